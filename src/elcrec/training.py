"""The training loop (PROTOCOL.md "Training and model selection"); nothing in it is model-specific.

Adam, batches of users in a random order, validation after every epoch, early stopping on one
validation metric (strictly better resets the patience, as the reference's EarlyStopping), the
best epoch's weights restored for the single test evaluation.

A run directory holds, while training, `checkpoint.pt`: everything needed to continue exactly
(weights, optimiser, every random state, the best weights so far, the history). It is replaced
atomically after every epoch, so a killed run resumes from its last finished epoch and ends with
the same numbers as an uninterrupted one (CPU; seeded). At the end the run writes `model.pt`
(best weights), `history.csv`, `user_ranks.npz` and last `metrics.json`, then drops the checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from elcrec import ElcrecError, snapshots
from elcrec.data.batches import AUGMENTATIONS, BATCH_UNITS, ItemSets, TrainingData, training_batches
from elcrec.data.sequences import SequenceData, Split
from elcrec.evaluation import KS, MASKING_MODES, EvaluationResult, evaluate
from elcrec.fileio import atomic_path, save_torch_atomic, write_json_atomic, write_text_atomic
from elcrec.models.base import EpochContext, RecommenderModel
from elcrec.models.registry import build
from elcrec.optimisation import NonFiniteLoss, Optimisation, load_checkpoint
from elcrec.runinfo import (
    code_version,
    device_description,
    library_versions,
    peak_memory_bytes,
    resolve_device,
)

TRAINING_DEFAULTS = {
    "epochs": 300,
    "batch_size": 256,
    "lr": 1e-3,
    "adam_betas": [0.9, 0.999],
    "weight_decay": 0.0,
    "patience": 40,
    "selection_metric": "NDCG@20",
    "masking": "zero",
    "eval_batch_size": 256,
    "device": "auto",
    "threads": None,
    "amp": False,
    # torch.compile of each step's loss (optimisation.py): numbers equal the eager run's within float tolerance
    "compile": False,
    "augmentation": "random",
    "tau": 0.2,
    "gamma": 0.7,
    "beta": 0.2,
    # a run whose loss turns NaN or infinite: `record` writes the run directory as diverged (epoch,
    # step and losses; the report shows it, as the paper's "-" for DCRec on Yelp), `fail` stops the job
    "on_divergence": "record",
    "batch_unit": "users",  # what batch_size counts: users, or prefix examples (data/batches.py BATCH_UNITS)
    # a step decay of the learning rate: x lr_decay every lr_decay_every epochs (0: constant), as StepLR
    "lr_decay_every": 0,
    "lr_decay": 1.0,
}
DIVERGENCE_MODES = ("record", "fail")
# the allowed values of the text training settings (settings.check; `device` has a pattern of its own)
TRAINING_CHOICES = {
    "masking": MASKING_MODES,
    "on_divergence": DIVERGENCE_MODES,
    "selection_metric": (*(f"{name}@{k}" for k in KS for name in ("HR", "NDCG")), "MRR"),
    "augmentation": ("random", "sslrec", *AUGMENTATIONS),
    "batch_unit": BATCH_UNITS,
}
CHECKPOINT, MODEL_FILE = "checkpoint.pt", "model.pt"
CHECKPOINT_FORMAT = 1


def scheduled_lr(settings: dict, epoch: int) -> float:
    """The learning rate of `epoch` (from 0): StepLR's lr * lr_decay^(epoch // lr_decay_every)."""
    every = settings["lr_decay_every"]
    return settings["lr"] * (settings["lr_decay"] ** (epoch // every) if every else 1.0)


def save_model_file(
    path: str | Path, model_name: str, vocab_size: int, settings: dict, state: dict, n_users: int = 0
) -> None:
    """The portable model file `elcrec evaluate` reads: name, vocabulary size, settings, weights
    (and the number of users, for models with user-id embeddings)."""
    record = {"model": model_name, "vocab_size": vocab_size, "settings": settings, "state": state, "n_users": n_users}
    save_torch_atomic(path, record)


def load_model_file(
    path: str | Path, device: torch.device | str = "cpu", train_sequences: SequenceData | None = None
) -> tuple[RecommenderModel, dict]:
    """The model of a model file, prepared with `train_sequences` (the training interactions of the
    split it is evaluated on) when given: models with data-derived structures (item graphs) need them."""
    path = Path(path)
    if not path.is_file():
        raise ElcrecError(f"{path}: model file not found")
    record = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(record, dict) or not {"model", "vocab_size", "settings", "state"} <= set(record):
        raise ElcrecError(f"{path}: not an elcrec model file (expected model, vocab_size, settings, state)")
    model = build(record["model"], record["vocab_size"], record["settings"], record.get("n_users", 0))
    if train_sequences is not None:
        model.prepare(train_sequences)
    model.load_state_dict(record["state"])
    return model.to(device), record


class Trainer:
    """One model on one split with resolved settings; `fit` runs the whole protocol."""

    def __init__(
        self, split: Split, model_name: str, settings: dict, seed: int, initial_state: dict | None = None
    ) -> None:
        """`initial_state`: weights to start from instead of the model's own initialisation (a
        fine-tuning run starts from its pre-training's, pretraining.fine_tuning_start)."""
        self.split, self.model_name, self.settings, self.seed = split, model_name, settings, seed
        if settings.get("threads"):
            torch.set_num_threads(int(settings["threads"]))
        self.device = resolve_device(settings["device"])
        torch.manual_seed(seed)
        self.model = build(model_name, split.vocab_size, settings, split.n_users)
        self.model.prepare(split.train_sequences)  # before .to(device): its buffers move with the model
        if initial_state is not None:
            self.model.load_state_dict(initial_state)  # strict: every weight of the model, nothing else
        self.model.to(self.device)
        self.optimisation = Optimisation.of(self.model, self.device, seed, settings, settings["lr"], self.device)
        self.generator = self.optimisation.generator
        self.optimizer = self.optimisation.optimizer
        self.item_sets = ItemSets(split.full_history, split.vocab_size)  # on the host: EpochContext's
        self.training_data = TrainingData.of(split, self.device)  # the batches are built on the device
        self.augmentation = {key: settings[key] for key in ("tau", "gamma", "beta")}
        self.augmentation["method"] = settings["augmentation"]
        self.epoch = 0  # the next epoch to run
        self.history: list[dict] = []
        self.best = {"epoch": -1, "value": -math.inf, "metrics": {}, "state": None}
        self.bad_epochs = 0
        self.snapshot_users = snapshots.sample_users(split.n_users)
        self.snapshots: list[dict] = []

    def take_snapshot(self, epoch: int, label: str) -> None:
        inputs = self.split.train_input[torch.as_tensor(self.snapshot_users)]
        taken = snapshots.take(self.model, inputs, self.snapshot_users, self.device)
        self.snapshots.append({"epoch": epoch, "label": label, **taken})

    # ----- one epoch -----
    def epoch_context(self, epoch: int) -> EpochContext:
        """What the model's `on_epoch_start` hook of `epoch` is given."""
        return EpochContext(
            epoch,
            self.seed,
            self.split.train_input,
            self.split.train_target,
            self.settings["eval_batch_size"],
            self.device,
            self.split.train_sequences,
            self.item_sets,
        )

    def epoch_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The current epoch's hook run, the model in training mode, and the epoch's batches."""
        self.model.on_epoch_start(self.epoch_context(self.epoch))
        self.model.train()
        return self.batches()

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The epoch's batches alone, without the epoch's hook (`bench --profile` times steps with it)."""
        return training_batches(
            self.training_data,
            self.settings["batch_size"],
            self.generator,
            views=self.model.needs_views,
            augmentation=self.augmentation,
            unit=self.settings["batch_unit"],
            whole=self.model.needs_whole,
            window=self.settings.get("window", 0),
            negatives=self.settings.get("negatives", 1),
        )

    def train_epoch(self) -> dict[str, float]:
        self.optimisation.set_lr(scheduled_lr(self.settings, self.epoch))
        return self.optimisation.epoch(self.model.loss, self.epoch_batches(), self.model_name, self.epoch)

    def evaluate(self, which: str, masking: str | None = None) -> EvaluationResult:
        self.model.eval()
        split = self.split
        inputs, targets, history = {
            "valid": (split.valid_input, split.valid_target, split.valid_history),
            "test": (split.test_input, split.test_target, split.test_history),
        }[which]
        # always in float32, also with `amp`: ranks must not depend on reduced-precision ties
        return evaluate(
            self.model.score,
            inputs,
            targets,
            history,
            masking=masking or self.settings["masking"],
            batch_size=self.settings["eval_batch_size"],
            device=self.device,
        )

    # ----- checkpoints -----
    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model_name": self.model_name,
            "settings": self.settings,
            "seed": self.seed,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            **self.optimisation.state(),
            "history": self.history,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "snapshots": self.snapshots,
        }

    def save_checkpoint(self, path: Path) -> None:
        save_torch_atomic(path, self.state())  # a kill mid-write leaves the last checkpoint

    def load_checkpoint(self, path: Path) -> None:
        expected = {
            "format": CHECKPOINT_FORMAT,
            "model_name": self.model_name,
            "settings": self.settings,
            "seed": self.seed,
        }
        saved = load_checkpoint(path, self.device, expected, "run")
        self.model.load_state_dict(saved["model"])
        self.optimisation.load_state(saved)
        self.epoch, self.history = saved["epoch"], saved["history"]
        self.best, self.bad_epochs = saved["best"], saved["bad_epochs"]
        self.snapshots = saved.get("snapshots", [])  # checkpoints written before snapshots existed

    # ----- the protocol -----
    def fit(self, checkpoint: Path | None = None, log: Callable[[str], None] | None = None) -> None:
        """Train until `epochs` or early stopping, checkpointing after every epoch."""
        log = log or (lambda line: print(line, file=sys.stderr))
        if checkpoint is not None and checkpoint.exists():
            self.load_checkpoint(checkpoint)
            log(f"resumed from {checkpoint} after epoch {self.epoch - 1}")
        metric, patience = self.settings["selection_metric"], self.settings["patience"]
        epochs = tqdm(range(self.epoch, self.settings["epochs"]), desc=self.model_name, unit="epoch", disable=None)
        for epoch in epochs:
            if self.bad_epochs >= patience:
                break
            started = time.perf_counter()
            losses = self.train_epoch()
            trained = time.perf_counter()
            validation = self.evaluate("valid").metrics
            finished = time.perf_counter()
            memory_mb = losses.pop("memory_mb")
            row = {"epoch": epoch, **losses, **{f"valid_{k}": v for k, v in validation.items()}}
            row["memory_mb"] = memory_mb
            row |= {"train_seconds": trained - started, "valid_seconds": finished - trained}
            self.history.append(row)
            if validation[metric] > self.best["value"]:
                state = {key: value.detach().clone() for key, value in self.model.state_dict().items()}
                self.best = {"epoch": epoch, "value": validation[metric], "metrics": validation, "state": state}
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
            if snapshots.is_snapshot_epoch(epoch):
                self.take_snapshot(epoch, f"epoch {epoch}")
            self.epoch = epoch + 1
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
            epochs.set_postfix({f"valid {metric}": f"{validation[metric]:.4f}", "best": self.best["epoch"]})
            log(
                f"epoch {epoch}: "
                + " ".join(f"{k[5:]} {v:.4f}" for k, v in losses.items())
                + f" | valid {metric} {validation[metric]:.4f} (best {self.best['value']:.4f} at {self.best['epoch']})"
                + f" | {row['train_seconds']:.1f}s + {row['valid_seconds']:.1f}s"
            )
        if self.best["state"] is None:
            raise ElcrecError(f"{self.model_name}: no epoch was run (epochs = {self.settings['epochs']})")
        self.model.load_state_dict(self.best["state"])


def peak_memory_kind(device: torch.device) -> str:
    return "cuda max allocated" if device.type == "cuda" else "cpu peak rss"


@contextlib.contextmanager
def tee_log(path: Path) -> Iterator[Callable[[str], None]]:
    """A log function for the duration: each line to stderr and appended to `path`, flushed."""
    with open(path, "a", encoding="utf-8") as log_file:

        def log(line: str) -> None:
            print(line, file=sys.stderr)
            log_file.write(line + "\n")
            log_file.flush()

        yield log


def mean_memory_bytes(history: list[dict]) -> float | None:
    """Mean of the epochs' mean memory (epochs hold equally many steps); None for runs whose
    history predates the reading."""
    readings = [row["memory_mb"] for row in history if row.get("memory_mb") is not None]
    return sum(readings) / len(readings) * 2**20 if readings else None


OTHER_MASKING = {"zero": "exclude", "exclude": "zero"}


def history_csv(history: list[dict]) -> str:
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def _common_record(trainer: Trainer, provenance: dict | None, started: float) -> dict:
    history = trainer.history
    epochs_run = len(history)
    train_seconds = sum(row["train_seconds"] + row["valid_seconds"] for row in history)
    return {
        "dataset": (provenance or {}).get("dataset"),
        "model": trainer.model_name,
        "variant": (provenance or {}).get("variant"),
        "seed": trainer.seed,
        "best_epoch": trainer.best["epoch"],
        "epochs_run": epochs_run,
        "training_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(epochs_run, 1),
        "train_seconds_per_epoch": sum(row["train_seconds"] for row in history) / max(epochs_run, 1),
        "wall_seconds_this_process": time.perf_counter() - started,
        "peak_memory_bytes": peak_memory_bytes(trainer.device),
        "peak_memory_kind": peak_memory_kind(trainer.device),
        # Table 2's "average memory during training": the mean over every training step's reading
        "mean_memory_bytes": mean_memory_bytes(history),
        "settings": trainer.settings,
        "data_sha256": (provenance or {}).get("data_sha256"),
        "code_version": code_version(),
        "device": device_description(trainer.device),
        "libraries": library_versions(),
        "parameters": sum(parameter.numel() for parameter in trainer.model.parameters()),
        # a fine-tuning run's pre-training: its file, sha256, epochs, seconds and memory (Table 11)
        "pretraining": (provenance or {}).get("pretraining"),
    }


def _diverged(trainer: Trainer, error: NonFiniteLoss, run_dir: Path, provenance: dict | None, started: float) -> dict:
    """The run directory of a run whose loss became non-finite: no test metrics (nothing is made up),
    the divergence's epoch, step and losses, the history up to it, and the best weights before it
    (or the weights at the divergence, when no epoch finished) so every output of the rule exists."""
    record = _common_record(trainer, provenance, started) | {
        "status": "diverged",
        "divergence": {"epoch": error.epoch, "step": error.step, "losses": error.losses, "message": str(error)},
        "test": {},
        "valid": {},
    }
    state = trainer.best["state"] or trainer.model.state_dict()
    split = trainer.split
    save_model_file(run_dir / MODEL_FILE, trainer.model_name, split.vocab_size, trainer.settings, state, split.n_users)
    write_text_atomic(run_dir / "history.csv", history_csv(trainer.history))
    with atomic_path(run_dir / "user_ranks.npz") as temporary, open(temporary, "wb") as handle:
        empty = np.zeros(0, np.int64)
        np.savez_compressed(handle, test=empty, valid=empty, users=empty)
    write_json_atomic(run_dir / "metrics.json", record)
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return record


def run(
    split: Split,
    model_name: str,
    settings: dict,
    seed: int,
    run_dir: str | Path,
    provenance: dict | None = None,
    initial_state: dict | None = None,
) -> dict:
    """Train, test and write the run directory; returns the metrics record (also metrics.json).
    `initial_state`: the weights a fine-tuning run starts from (its pre-training is described by
    provenance["pretraining"], written into the record)."""
    if settings["on_divergence"] not in DIVERGENCE_MODES:
        raise ElcrecError(f"on_divergence must be one of {DIVERGENCE_MODES}, got {settings['on_divergence']!r}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = Trainer(split, model_name, settings, seed, initial_state)
    with tee_log(run_dir / "train.log") as log:
        try:
            trainer.fit(run_dir / CHECKPOINT, log)
        except NonFiniteLoss as error:
            if settings["on_divergence"] == "fail":
                raise
            log(f"{error}: recorded as a diverged run (on_divergence: record)")
            return _diverged(trainer, error, run_dir, provenance, started)
        test = trainer.evaluate("test")
        valid = trainer.evaluate("valid")
        # evidence for the report's "Paper vs code" section: the same weights under the other masking
        other_masking = OTHER_MASKING[settings["masking"]]
        test_other = trainer.evaluate("test", masking=other_masking)
        trainer.take_snapshot(trainer.best["epoch"], f"best (epoch {trainer.best['epoch']})")
    record = _common_record(trainer, provenance, started) | {
        "status": "ok",
        "test": test.metrics,
        "valid": valid.metrics,
        "test_other_masking": {"masking": other_masking, "metrics": test_other.metrics},
    }
    save_model_file(run_dir / MODEL_FILE, model_name, split.vocab_size, settings, trainer.best["state"], split.n_users)
    write_text_atomic(run_dir / "history.csv", history_csv(trainer.history))
    snapshots.write(run_dir / "embeddings.npz", trainer.snapshot_users, trainer.snapshots)
    with atomic_path(run_dir / "user_ranks.npz") as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, test=test.ranks, valid=valid.ranks, users=np.arange(split.n_users))
    write_json_atomic(run_dir / "metrics.json", record)
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return record

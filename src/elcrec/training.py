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

import csv
import io
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from elcrec import ElcrecError, snapshots
from elcrec.data.batches import ItemSets, training_batches
from elcrec.data.sequences import SequenceData, Split
from elcrec.evaluation import EvaluationResult, evaluate
from elcrec.fileio import atomic_path, write_json_atomic, write_text_atomic
from elcrec.models.base import EpochContext, RecommenderModel
from elcrec.models.registry import build
from elcrec.runinfo import (
    code_version,
    current_memory_bytes,
    device_description,
    library_versions,
    native_bfloat16,
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
    "augmentation": "random",
    "tau": 0.2,
    "gamma": 0.7,
    "beta": 0.2,
    # a run whose loss turns NaN or infinite: `record` writes the run directory as diverged (epoch,
    # step and losses; the report shows it, as the paper's "-" for DCRec on Yelp), `fail` stops the job
    "on_divergence": "record",
}
DIVERGENCE_MODES = ("record", "fail")
CHECKPOINT, MODEL_FILE = "checkpoint.pt", "model.pt"
CHECKPOINT_FORMAT = 1


class NonFiniteLoss(ElcrecError):
    """A loss that is NaN or infinite, with where it happened (epoch from 0, step within the epoch)."""

    def __init__(self, message: str, epoch: int = -1, step: int = -1, losses: dict[str, float] | None = None):
        super().__init__(message)
        self.epoch, self.step, self.losses = epoch, step, losses or {}


def save_model_file(
    path: str | Path, model_name: str, vocab_size: int, settings: dict, state: dict, n_users: int = 0
) -> None:
    """The portable model file `elcrec evaluate` reads: name, vocabulary size, settings, weights
    (and the number of users, for models with user-id embeddings)."""
    record = {"model": model_name, "vocab_size": vocab_size, "settings": settings, "state": state, "n_users": n_users}
    with atomic_path(path) as temporary:
        torch.save(record, temporary)


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


class DivergenceWatch:
    """The first step of an epoch whose losses were not all finite, and those losses, kept on the
    device (no per-step read); `raise_if_diverged` reads them once, at the epoch's end."""

    def __init__(self, device: torch.device) -> None:
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.names: list[str] = []
        self.values: torch.Tensor | None = None

    def observe(self, losses: dict[str, torch.Tensor], step: int) -> None:
        values = torch.stack([value.detach().float() for value in losses.values()])
        if self.values is None:
            self.names, self.values = list(losses), torch.zeros_like(values)
        first = (self.first_step < 0) & ~torch.isfinite(values).all()
        self.first_step = torch.where(first, torch.full_like(self.first_step, step), self.first_step)
        self.values = torch.where(first, values, self.values)

    def raise_if_diverged(self, model_name: str, epoch: int) -> None:
        step = int(self.first_step)
        if step < 0:
            return
        values = dict(zip(self.names, self.values.tolist(), strict=True))
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        raise NonFiniteLoss(
            f"{model_name}: non-finite loss at epoch {epoch}, step {step}: "
            + ", ".join(f"{name} = {values[name]}" for name in bad),
            epoch=epoch,
            step=step,
            losses=values,
        )


class Trainer:
    """One model on one split with resolved settings; `fit` runs the whole protocol."""

    def __init__(self, split: Split, model_name: str, settings: dict, seed: int) -> None:
        self.split, self.model_name, self.settings, self.seed = split, model_name, settings, seed
        if settings.get("threads"):
            torch.set_num_threads(int(settings["threads"]))
        self.device = resolve_device(settings["device"])
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.model = build(model_name, split.vocab_size, settings, split.n_users)
        self.model.prepare(split.train_sequences)  # before .to(device): its buffers move with the model
        self.model.to(self.device)
        parameters = list(self.model.parameters())
        # a model without parameters (`pop`) is fitted in on_epoch_start and takes no steps
        self.optimizer = None
        if parameters:
            self.optimizer = torch.optim.Adam(
                parameters,
                lr=settings["lr"],
                betas=tuple(settings["adam_betas"]),
                weight_decay=settings["weight_decay"],
            )
        self.item_sets = ItemSets(split.full_history, split.vocab_size)
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        if settings["amp"] and self.device.type == "cpu" and native_bfloat16() is False:
            warnings.warn(
                "amp: true on a CPU without native bfloat16 (no AVX512-BF16/AMX): torch emulates it, "
                "which is slower than float32 here; set amp: false",
                RuntimeWarning,
                stacklevel=2,
            )
        self.scaler = torch.amp.GradScaler(enabled=settings["amp"] and self.device.type == "cuda")
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
    def train_epoch(self) -> dict[str, float]:
        context = EpochContext(
            self.epoch,
            self.seed,
            self.split.train_input,
            self.split.train_target,
            self.settings["eval_batch_size"],
            self.device,
            self.split.train_sequences,
            self.item_sets,
        )
        self.model.on_epoch_start(context)
        self.model.train()
        # loss sums and the finiteness check stay on the device and are read once, at the epoch's end:
        # no host-device synchronisation per step (on a GPU a step would otherwise wait for the last)
        sums: dict[str, torch.Tensor] = {}
        watch = DivergenceWatch(self.device)
        steps, memory = 0, 0
        batches = training_batches(
            self.split,
            self.item_sets,
            self.settings["batch_size"],
            self.generator,
            views=self.model.needs_views,
            augmentation=self.augmentation,
        )
        for batch in batches:
            batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.settings["amp"]):
                losses = self.model.loss(batch)
            watch.observe(losses, steps)
            if self.optimizer is not None:
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(losses["total"]).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            for name, value in losses.items():
                total = sums.get(name)
                value = value.detach().to(torch.float64)
                sums[name] = value if total is None else total + value
            memory += current_memory_bytes(self.device)
            steps += 1
        watch.raise_if_diverged(self.model_name, self.epoch)
        means = {f"loss_{name}": float(total) / max(steps, 1) for name, total in sums.items()}
        return means | {"memory_mb": memory / max(steps, 1) / 2**20}  # mean over the epoch's steps

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
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "history": self.history,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "snapshots": self.snapshots,
        }

    def save_checkpoint(self, path: Path) -> None:
        with atomic_path(path) as temporary:
            torch.save(self.state(), temporary)

    def load_checkpoint(self, path: Path) -> None:
        saved = torch.load(path, map_location=self.device, weights_only=False)
        # threads may differ between attempts (e.g. fewer cores on the retry); nothing else may
        expected = {
            "format": CHECKPOINT_FORMAT,
            "model_name": self.model_name,
            "settings": _without_threads(self.settings),
            "seed": self.seed,
        }
        saved["settings"] = _without_threads(saved.get("settings", {}))
        differing = [key for key, value in expected.items() if saved.get(key) != value]
        if differing:
            raise ElcrecError(
                f"{path}: checkpoint of a different run ({', '.join(differing)} differ); "
                "delete it to start this run afresh"
            )
        self.model.load_state_dict(saved["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        if saved["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([state.cpu() for state in saved["cuda_rng"]])
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


def _mean_memory_bytes(history: list[dict]) -> float | None:
    """Mean of the epochs' mean memory (epochs hold equally many steps); None for runs whose
    history predates the reading."""
    readings = [row["memory_mb"] for row in history if row.get("memory_mb") is not None]
    return sum(readings) / len(readings) * 2**20 if readings else None


def _without_threads(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key != "threads"}


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
        "peak_memory_kind": "cuda max allocated" if trainer.device.type == "cuda" else "cpu peak rss",
        # Table 2's "average memory during training": the mean over every training step's reading
        "mean_memory_bytes": _mean_memory_bytes(history),
        "settings": trainer.settings,
        "data_sha256": (provenance or {}).get("data_sha256"),
        "code_version": code_version(),
        "device": device_description(trainer.device),
        "libraries": library_versions(),
        "parameters": sum(parameter.numel() for parameter in trainer.model.parameters()),
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
    split: Split, model_name: str, settings: dict, seed: int, run_dir: str | Path, provenance: dict | None = None
) -> dict:
    """Train, test and write the run directory; returns the metrics record (also metrics.json)."""
    if settings["on_divergence"] not in DIVERGENCE_MODES:
        raise ElcrecError(f"on_divergence must be one of {DIVERGENCE_MODES}, got {settings['on_divergence']!r}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = Trainer(split, model_name, settings, seed)
    log_file = open(run_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115 (closed below)

    def log(line: str) -> None:
        print(line, file=sys.stderr)
        log_file.write(line + "\n")
        log_file.flush()

    try:
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
    finally:
        log_file.close()
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

"""Pre-training (S3-Rec, DSSRec): the model's own objective over the training interactions, for a
fixed number of epochs, before fine-tuning from its weights (workflow rule `pretrain`).

A pre-training lives in `results/pretrain/{dataset}/{model}/{pretraining}/`: `pretrained.pt` (every
weight, the pre-training-only heads included), `history.csv` (losses per epoch), `metrics.json`
(epochs, seconds, peak and mean memory, device: Table 11 times pre-training and fine-tuning
separately) and, while it runs, `checkpoint.pt`, replaced after every epoch, so a killed
pre-training resumes from its last finished epoch and ends as an uninterrupted one would.

One pre-training serves every fine-tuning run that agrees on the settings it reads (the model's
`pretraining_settings`): the official S3-Rec pre-trains once per dataset (seed 42) and fine-tunes
every run from that checkpoint. There is no validation and no early stopping: the official code
saves a checkpoint every 10 epochs and fine-tunes from a fixed epoch's (`pretrain_epochs`), and
with a constant learning rate the state after N epochs does not depend on the total planned.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from elcrec import ElcrecError
from elcrec.fileio import file_digest, save_torch_atomic, write_json_atomic, write_text_atomic
from elcrec.models.base import PRETRAINING_HEADS, PretrainingData, RecommenderModel
from elcrec.models.registry import build, model_class
from elcrec.optimisation import Optimisation, load_checkpoint
from elcrec.runinfo import code_version, device_description, library_versions, peak_memory_bytes, resolve_device
from elcrec.training import history_csv, mean_memory_bytes, peak_memory_kind, tee_log

PRETRAINED_FILE, CHECKPOINT, METRICS = "pretrained.pt", "checkpoint.pt", "metrics.json"
OFFICIAL = "official"  # the pre-training name of an imported official model (rule import_pretrained)
CHECKPOINT_FORMAT = 1


def load_pretraining_data(
    sequences_path: str | Path, attributes_path: str | Path | None, max_len: int, dataset: str | None = None
) -> PretrainingData:
    """A dataset's pre-training data from its sequence file and the data stage's attributes file (its
    `null` marker, or no file: the dataset has none; the model says whether it needs them)."""
    from elcrec.data.attributes import read_attributes
    from elcrec.data.sequences import MIN_LENGTH, SequenceData

    sequences = SequenceData.load(sequences_path, min_length=MIN_LENGTH)  # refuses users too short to split
    name = dataset or Path(sequences_path).stem
    attributes = read_attributes(attributes_path, name) if attributes_path else None
    return PretrainingData.of(sequences, max_len, attributes, name)


def pretraining_identity(model_name: str, settings: dict) -> dict:
    """The settings a pre-training depends on (the model's `pretraining_settings`)."""
    cls = model_class(model_name)
    if not cls.pretrains:
        raise ElcrecError(f"model {model_name!r} has no pre-training stage")
    return cls.pretraining_identity(settings)


class Pretrainer:
    """One model's pre-training on one dataset's training interactions."""

    def __init__(self, data: PretrainingData, model_name: str, settings: dict) -> None:
        self.data, self.model_name, self.settings = data, model_name, settings
        self.identity = pretraining_identity(model_name, settings)
        if settings.get("threads"):
            torch.set_num_threads(int(settings["threads"]))
        self.device = resolve_device(settings["device"])
        seed = int(settings["pretrain_seed"])
        torch.manual_seed(seed)
        self.model: RecommenderModel = build(model_name, data.vocab_size, settings)
        self.model.prepare(data.train_sequences)
        self.model.prepare_pretraining(data)
        self.model.to(self.device)
        # the models' pre-training batch builders run on the host: the generator stays there
        self.optimisation = Optimisation.of(self.model, self.device, seed, settings, settings["pretrain_lr"])
        self.epoch = 0  # the next epoch to run
        self.history: list[dict] = []

    def epoch_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The model in training mode, and the current epoch's pre-training batches."""
        self.model.train()
        return self.model.pretraining_batches(
            self.data, int(self.settings["pretrain_batch_size"]), self.optimisation.generator
        )

    def pretrain_epoch(self) -> dict[str, float]:
        return self.optimisation.epoch(
            self.model.pretraining_loss, self.epoch_batches(), f"{self.model_name} pre-training", self.epoch
        )

    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model_name": self.model_name,
            "identity": self.identity,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "history": self.history,
            **self.optimisation.state(),
        }

    def save_checkpoint(self, path: Path) -> None:
        save_torch_atomic(path, self.state())  # a kill mid-write leaves the last checkpoint

    def load_checkpoint(self, path: Path) -> None:
        expected = {"format": CHECKPOINT_FORMAT, "model_name": self.model_name, "identity": self.identity}
        saved = load_checkpoint(path, self.device, expected, "pre-training")
        self.model.load_state_dict(saved["model"])
        self.optimisation.load_state(saved)
        self.epoch, self.history = saved["epoch"], saved["history"]

    def fit(self, checkpoint: Path | None = None, log: Callable[[str], None] | None = None) -> None:
        log = log or (lambda line: print(line, file=sys.stderr))
        if checkpoint is not None and checkpoint.exists():
            self.load_checkpoint(checkpoint)
            log(f"resumed from {checkpoint} after pre-training epoch {self.epoch - 1}")
        total = int(self.settings["pretrain_epochs"])
        if total < 1:
            raise ElcrecError(f"{self.model_name}: pretrain_epochs must be at least 1, got {total}")
        epochs = tqdm(range(self.epoch, total), desc=f"{self.model_name} pre-training", unit="epoch", disable=None)
        for epoch in epochs:
            started = time.perf_counter()
            losses = self.pretrain_epoch()
            row = {"epoch": epoch, **losses, "train_seconds": time.perf_counter() - started}
            self.history.append(row)
            self.epoch = epoch + 1
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
            shown = {key[5:]: value for key, value in losses.items() if key.startswith("loss_")}
            epochs.set_postfix({"loss": f"{shown.get('total', float('nan')):.4f}"})
            log(
                f"pre-training epoch {epoch}: "
                + " ".join(f"{name} {value:.4f}" for name, value in shown.items())
                + f" | {row['train_seconds']:.1f}s"
            )


def pretrain(data: PretrainingData, model_name: str, settings: dict, out_dir: str | Path, provenance: dict) -> dict:
    """Pre-train and write the pre-training folder; returns its metrics record (also metrics.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = Pretrainer(data, model_name, settings)
    with tee_log(out_dir / "pretrain.log") as log:
        trainer.fit(out_dir / CHECKPOINT, log)
    history = trainer.history
    seconds = sum(row["train_seconds"] for row in history)
    record = {
        "dataset": provenance.get("dataset"),
        "model": model_name,
        "pretraining": settings["pretraining"],
        "status": "ok",
        "epochs_run": len(history),
        "pretraining_seconds": seconds,
        "seconds_per_epoch": seconds / max(len(history), 1),
        "wall_seconds_this_process": time.perf_counter() - started,
        "peak_memory_bytes": peak_memory_bytes(trainer.device),
        "peak_memory_kind": peak_memory_kind(trainer.device),
        "mean_memory_bytes": mean_memory_bytes(history),
        "final_losses": {key: value for key, value in history[-1].items() if key.startswith("loss_")},
        "identity": trainer.identity,
        "settings": settings,
        "data_sha256": provenance.get("data_sha256"),
        "attributes_sha256": provenance.get("attributes_sha256"),
        "code_version": code_version(),
        "device": device_description(trainer.device),
        "libraries": library_versions(),
        "parameters": sum(parameter.numel() for parameter in trainer.model.parameters()),
    }
    saved = {
        "model": model_name,
        "vocab_size": data.vocab_size,
        "identity": trainer.identity,
        "settings": settings,
        "state": trainer.model.state_dict(),
    }
    save_torch_atomic(out_dir / PRETRAINED_FILE, saved)
    write_text_atomic(out_dir / "history.csv", history_csv(history))
    write_json_atomic(out_dir / METRICS, record)
    (out_dir / CHECKPOINT).unlink(missing_ok=True)
    return record


def import_official(
    state_path: str | Path,
    data: PretrainingData,
    model_name: str,
    settings: dict,
    out_dir: str | Path,
    provenance: dict,
) -> dict:
    """The official pre-trained model `state_path` (S3-Rec's reproduce/*.pt) as the pre-training folder
    `official`: every weight, heads included, through the name map (models/reference.py), loaded
    strictly into our model built with `settings`, so fine-tuning starts from it as from our own."""
    from elcrec.models.reference import convert_s3rec_state

    if model_name != "s3rec":
        raise ElcrecError(f"import of official pre-trained weights: only s3rec has them, not {model_name!r}")
    if settings.get("pretraining") != OFFICIAL:
        named = settings.get("pretraining")
        raise ElcrecError(f"an imported pre-training is named {OFFICIAL!r}; the settings name {named!r}")
    state_path, out_dir = Path(state_path), Path(out_dir)
    torch.manual_seed(int(settings["pretrain_seed"]))
    model = build(model_name, data.vocab_size, settings)
    model.prepare(data.train_sequences)
    model.prepare_pretraining(data)
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(convert_s3rec_state(state), strict=True)
    except RuntimeError as error:  # missing, unexpected or mis-shaped weights: name them
        found = " ".join(str(error).split())  # one line
        raise ElcrecError(f"{state_path}: does not fit {model_name} with these settings and data: {found}") from None
    identity = pretraining_identity(model_name, settings)
    record = {
        "dataset": provenance.get("dataset"),
        "model": model_name,
        "pretraining": OFFICIAL,
        "status": "ok",
        "imported_from": {"file": state_path.name, "sha256": file_digest(state_path, "sha256")},
        "epochs_run": int(settings["pretrain_epochs"]),  # the official file's: reproduce/<Dataset>-epochs-N.pt
        "pretraining_seconds": None,  # not trained here
        "identity": identity,
        "settings": settings,
        "data_sha256": provenance.get("data_sha256"),
        "attributes_sha256": provenance.get("attributes_sha256"),
        "code_version": code_version(),
        "libraries": library_versions(),
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {"model": model_name, "vocab_size": data.vocab_size, "identity": identity, "settings": settings}
    save_torch_atomic(out_dir / PRETRAINED_FILE, saved | {"state": model.state_dict()})
    write_json_atomic(out_dir / METRICS, record)
    return record


def fine_tuning_start(path: str | Path, model_name: str, settings: dict, vocab_size: int) -> tuple[dict, dict]:
    """The weights a fine-tuning run starts from (every pre-trained weight but the pre-training-only
    heads) and the pre-training's record for the run's metrics.json (its time and memory, Table 11).

    The pre-training must be of the same model, vocabulary and pre-training settings: anything else
    is an error naming what differs, never a silent partial load."""
    path = Path(path)
    if not path.is_file():
        raise ElcrecError(f"{path}: pre-trained model not found (rule `pretrain` / `elcrec pretrain` writes it)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or not {"model", "vocab_size", "identity", "state"} <= set(saved):
        raise ElcrecError(f"{path}: not an elcrec pre-training file (expected model, vocab_size, identity, state)")
    if saved["model"] != model_name:
        raise ElcrecError(f"{path}: a pre-training of {saved['model']!r}, not of {model_name!r}")
    if saved["vocab_size"] != vocab_size:
        raise ElcrecError(f"{path}: pre-trained on a vocabulary of {saved['vocab_size']}, this data has {vocab_size}")
    wanted = pretraining_identity(model_name, settings)
    differing = sorted(key for key in wanted if saved["identity"].get(key) != wanted[key])
    if differing:
        described = ", ".join(f"{key}: {saved['identity'].get(key)!r} there, {wanted[key]!r} here" for key in differing)
        raise ElcrecError(f"{path}: pre-trained with other settings ({described})")
    heads = f"{PRETRAINING_HEADS}."
    state = {key: value for key, value in saved["state"].items() if not key.startswith(heads)}
    metrics_path = path.with_name(METRICS)
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    record = {
        "file": str(path),
        "sha256": file_digest(path, "sha256"),
        "pretraining": saved["settings"].get("pretraining"),
        "epochs_run": metrics.get("epochs_run"),
        "pretraining_seconds": metrics.get("pretraining_seconds"),
        "peak_memory_bytes": metrics.get("peak_memory_bytes"),
        "mean_memory_bytes": metrics.get("mean_memory_bytes"),
        "device": metrics.get("device"),
    }
    return state, record

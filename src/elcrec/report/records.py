"""Run directories -> one row per finished run (`runs.csv`): identity, provenance and cost, what
every table cell's `cell` id resolves to (the report's provenance links); the runs trained on other
data than their dataset's sequence file now, kept out of every table and listed (`foreign.csv`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from elcrec import ElcrecError
from elcrec.stats import cell_id

METRICS = ["HR@5", "HR@20", "NDCG@5", "NDCG@20"]


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _run_row(record: dict, run_dir: Path) -> dict:
    dataset, model, variant = run_dir.parts[-4:-1]
    other = record.get("test_other_masking") or {}
    settings = record.get("settings", {})
    divergence = record.get("divergence") or {}
    pretraining = record.get("pretraining") or {}
    return {
        "dataset": dataset,
        "model": model,
        "variant": variant,
        "seed": int(run_dir.name.removeprefix("seed") or 0),
        "cell": cell_id(dataset, model, variant),
        "run_dir": str(run_dir),
        # `diverged`: the loss became non-finite (training.run, on_divergence: record); no test metrics
        "status": record.get("status", "ok"),
        "divergence": divergence.get("message"),
        "settings_hash": settings_hash(settings),
        "masking": settings.get("masking"),
        "data_sha256": record.get("data_sha256"),
        "code_version": record.get("code_version"),
        "device": record.get("device"),
        "libraries": json.dumps(record.get("libraries", {}), sort_keys=True),
        "epochs_run": record.get("epochs_run"),
        "best_epoch": record.get("best_epoch"),
        "training_seconds": record.get("training_seconds"),
        "seconds_per_epoch": record.get("seconds_per_epoch"),
        "peak_memory_mb": (record.get("peak_memory_bytes") or 0) / 2**20,
        "mean_memory_mb": (record.get("mean_memory_bytes") or float("nan")) / 2**20,
        "peak_memory_kind": record.get("peak_memory_kind"),
        # a fine-tuning run's pre-training (S3-Rec, DSSRec): Table 11 times both stages
        "pretraining_seconds": pretraining.get("pretraining_seconds"),
        "pretraining_mean_memory_mb": (pretraining.get("mean_memory_bytes") or float("nan")) / 2**20,
        "pretraining_peak_memory_mb": (pretraining.get("peak_memory_bytes") or float("nan")) / 2**20,
        "other_masking": other.get("masking"),
        **{f"other_{metric}": (other.get("metrics") or {}).get(metric) for metric in METRICS},
        **{f"test_{metric}": record.get("test", {}).get(metric) for metric in METRICS},
    }


RUN_COLUMNS = list(_run_row({}, Path("dataset/model/variant/seed0")))
DIVERGED_COLUMNS = ["dataset", "model", "variant", "seed", "cell", "run_dir", "epochs_run", "divergence"]
FOREIGN_COLUMNS = ["dataset", "model", "variant", "seed", "run_dir", "data_sha256", "current_sha256", "reason"]


def current_digests(sequences_dir: str | Path) -> dict[str, str]:
    """{dataset: sha256 of its sequence file now}, from the sequences stage's stats files."""
    digests = {}
    for path in sorted(Path(sequences_dir).glob("*.stats.json")):
        digest = json.loads(path.read_text(encoding="utf-8")).get("sequence_sha256")
        if digest:
            digests[path.name.removesuffix(".stats.json")] = digest
    return digests


def foreign_runs(runs: pd.DataFrame, digests: dict[str, str]) -> pd.DataFrame:
    """Runs trained on other data than their dataset's sequence file now (a smoke run left in
    results/runs before the full run, say): kept out of every table, listed with the reason."""
    if not len(runs):
        return pd.DataFrame(columns=FOREIGN_COLUMNS)
    current = runs["dataset"].map(digests)
    other = current.notna() & runs["data_sha256"].notna() & (runs["data_sha256"] != current)
    rows = runs.loc[other, FOREIGN_COLUMNS[:-2]].assign(current_sha256=current[other])
    trained, now = rows["data_sha256"].astype(str).str[:12], rows["current_sha256"].astype(str).str[:12]
    rows["reason"] = "trained on another sequence file than the dataset's now (sha256 " + trained + ", now " + now + ")"
    return rows[FOREIGN_COLUMNS].reset_index(drop=True)


def run_records(root: str | Path) -> pd.DataFrame:
    """One row per finished run: identity, provenance and cost (what the report links to)."""
    rows = []
    for path in sorted(Path(root).glob("*/*/*/seed*/metrics.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ElcrecError(f"{path}: not a run's metrics.json ({error})") from error
        rows.append(_run_row(record, path.parent))
    return pd.DataFrame(rows, columns=RUN_COLUMNS)

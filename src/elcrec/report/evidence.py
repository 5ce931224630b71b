"""Per-run evidence beyond the seed-level tables: training curves (Figure 3), the sensitivity
sweep (Figure 2) and the same weights tested under both history maskings (Paper vs code)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

METRICS = ["HR@5", "HR@20", "NDCG@5", "NDCG@20"]
# sensitivity runs (issue 6) are elcrec variants named after the one setting they change
SENSITIVITY_VARIANT = re.compile(r"^(alpha|k)-([0-9.e+-]+)$")


def convergence(runs: pd.DataFrame) -> pd.DataFrame:
    """Figure 3: validation HR@5 and training loss per epoch of the ELCRec runs."""
    frames = []
    for run in runs[(runs["model"] == "elcrec") & (runs["variant"] == "ELCRec")].itertuples():
        history = pd.read_csv(Path(run.run_dir) / "history.csv")
        frames.append(
            pd.DataFrame(
                {
                    "dataset": run.dataset,
                    "seed": run.seed,
                    "epoch": history["epoch"],
                    "valid_HR@5": history["valid_HR@5"],
                    "loss": history["loss_total"],
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["dataset", "seed", "epoch", "valid_HR@5", "loss"])
    )


def sensitivity(runs: pd.DataFrame) -> pd.DataFrame:
    """Figure 2: HR@5 against alpha and k; the paper-setting ELCRec run is a point on both curves."""
    rows = []
    for run in runs[runs["model"] == "elcrec"].to_dict("records"):
        match = SENSITIVITY_VARIANT.match(run["variant"])
        if run["variant"] != "ELCRec" and not match:
            continue
        record = json.loads((Path(run["run_dir"]) / "metrics.json").read_text(encoding="utf-8"))
        for parameter, key in (("alpha", "alpha"), ("k", "clusters")):
            if match is None or match.group(1) == parameter:
                rows.append(
                    {
                        "dataset": run["dataset"],
                        "parameter": parameter,
                        "value": float(record["settings"][key]),
                        "seed": run["seed"],
                        "HR@5": run["test_HR@5"],
                        "cell": run["cell"],
                    }
                )
    return pd.DataFrame(rows, columns=["dataset", "parameter", "value", "seed", "HR@5", "cell"])


def masking(runs: pd.DataFrame) -> pd.DataFrame:
    """Paper vs code: the same weights tested with history scores set to 0 and excluded (-inf)."""
    rows = []
    for run in runs.to_dict("records"):
        if not run.get("other_masking"):
            continue
        for metric in METRICS:
            values = {run["masking"]: run[f"test_{metric}"], run["other_masking"]: run[f"other_{metric}"]}
            rows.append(
                {
                    "dataset": run["dataset"],
                    "model": run["model"],
                    "variant": run["variant"],
                    "seed": run["seed"],
                    "cell": run["cell"],
                    "metric": metric,
                    "zero": values.get("zero"),
                    "exclude": values.get("exclude"),
                }
            )
    frame = pd.DataFrame(rows, columns=["dataset", "model", "variant", "seed", "cell", "metric", "zero", "exclude"])
    if not len(frame):
        return frame
    grouped = frame.groupby(["dataset", "model", "variant", "cell", "metric"], sort=True)
    return grouped.agg(zero=("zero", "mean"), exclude=("exclude", "mean"), seeds=("seed", "count")).reset_index()

"""Tables 6 and 7: dataset statistics from the sequences stage's stats files, beside the paper's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

BENCHMARKS = ["sports", "beauty", "toys", "yelp"]  # the paper's four (Tables 1, 2, 6, 10; Figures 2, 3)


def statistics(sequences_dir: str | Path, paper: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables 6 and 7 from the sequences stage's stats files, beside the paper's."""
    rows = []
    for dataset in BENCHMARKS:
        path = Path(sequences_dir) / f"{dataset}.stats.json"
        published = paper["table6_dataset_stats"][dataset]
        row = {"dataset": dataset, **{f"paper_{key}": str(value) for key, value in published.items()}}
        if path.exists():
            mine = json.loads(path.read_text(encoding="utf-8"))
            row |= {
                "users": mine["users"],
                "items": mine["items"],
                "actions": mine["interactions"],
                "avg_len": mine["avg_length"],
                "sparsity_pct": 100.0 * mine["sparsity"],
                "sequence_sha256": mine["sequence_sha256"],
                "status": "ok",
            }
        else:
            row["status"] = "missing"
        rows.append(row)
    ml1m_path = Path(sequences_dir) / "ml-1m.stats.json"
    published = paper["table7_ml1m_stats"]
    ml1m = {f"paper_{key}": value for key, value in published.items()}
    if ml1m_path.exists():
        raw = json.loads(ml1m_path.read_text(encoding="utf-8"))["steps"].get("raw", {})
        ml1m |= {
            "users": raw.get("users"),
            "movies": raw.get("items"),
            "ratings": raw.get("interactions"),
            "status": "ok" if raw else "missing",
        }
        if raw:
            ml1m |= {
                "ratings_per_user": raw["interactions"] / raw["users"],
                "ratings_per_movie": raw["interactions"] / raw["items"],
            }
    else:
        ml1m["status"] = "missing"
    return pd.DataFrame(rows), pd.DataFrame([ml1m])

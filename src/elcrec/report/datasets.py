"""Tables 6 and 7: dataset statistics from the sequences stage's stats files, beside the paper's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

BENCHMARKS = ["sports", "beauty", "toys", "yelp"]  # the paper's four (Tables 1, 2, 6, 10; Figures 2, 3)
# MIND-small has no statistics table in the paper; its appendix says only that MIND-small samples
# 50,000 users of MIND, and MINDsmall_train alone holds those 50,000: fewer raw users is other data
MIND_SMALL_USERS = 50_000
ORIGIN_COLUMNS = ["dataset", "statistic", "ours", "paper", "differs", "section"]


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
        record = json.loads(ml1m_path.read_text(encoding="utf-8"))
        raw = record["steps"].get("raw", {})
        ml1m |= {
            "sequence_sha256": record.get("sequence_sha256"),  # the sequence file the ML-1M runs read
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


def data_origin(table6: pd.DataFrame, table7: pd.DataFrame, sequences_dir: str | Path) -> pd.DataFrame:
    """Per dataset with data, the statistic that tells whether it is visibly not the paper's data
    (the report's "Not the paper's data" banner): Table 6's users for the four benchmarks, Table 7's
    raw users for ML-1M, and for MIND-small its raw users against the 50,000 the paper samples.
    One-sided: a count equal to the paper's does not prove the data are the paper's."""
    rows = []
    for row in table6.to_dict("records"):
        if row["status"] == "ok":
            ours, paper = int(row["users"]), str(row["paper_users"])
            rows.append([row["dataset"], "users (Table 6)", ours, paper, str(ours) != paper, "table6"])
    if len(table7) and table7["status"].iloc[0] == "ok":
        ours, paper = int(table7["users"].iloc[0]), int(table7["paper_users"].iloc[0])
        rows.append(["ml-1m", "raw users (Table 7)", ours, str(paper), ours != paper, "table7"])
    mind = Path(sequences_dir) / "mind-small.stats.json"
    raw = json.loads(mind.read_text(encoding="utf-8")).get("steps", {}).get("raw", {}) if mind.exists() else {}
    if raw.get("users") is not None:
        ours = int(raw["users"])
        statistic = "raw users (the paper's MIND-small samples 50,000)"
        rows.append(["mind-small", statistic, ours, f">= {MIND_SMALL_USERS}", ours < MIND_SMALL_USERS, "table9"])
    return pd.DataFrame(rows, columns=ORIGIN_COLUMNS)

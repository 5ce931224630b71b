"""Beyond the paper: ELCRec against baselines trained with cross-entropy (docs/BEYOND.md).

Not the paper's experiments. The paper trains ELCRec and its SASRec-family baselines with the code's
binary cross-entropy (one sampled negative per position); experiment `strong-baselines` trains SASRec,
ICLRec and ELCRec with a full-softmax cross-entropy (variant `ce`). `table` puts them beside the
paper's ELCRec and ours, `tests` compares the pairs the two verdicts of config/claims.yaml (`beyond`)
rest on: the paper's seed t-test and the paired per-user tests. The paper's columns are untouched.
"""

from __future__ import annotations

import pandas as pd

from elcrec import stats
from elcrec.report.datasets import BENCHMARKS

METRICS = ["HR@5", "HR@20", "NDCG@5", "NDCG@20"]
CE_VARIANT = "ce"
TABLE = "Beyond: cross-entropy"  # its name in the missing-runs table
PUBLISHED = "ELCRec (paper)"
# our columns: (model, variant) of the run cells; `ce` is each model's cross-entropy variant
COLUMNS = {
    "ELCRec": ("elcrec", "ELCRec"),
    "SASRec-CE": ("sasrec", CE_VARIANT),
    "ICLRec-CE": ("iclrec", CE_VARIANT),
    "ELCRec-CE": ("elcrec", CE_VARIANT),
}
# the pairs compared: (the one claimed better, the other)
COMPARISONS = [("ELCRec", "SASRec-CE"), ("ELCRec-CE", "SASRec-CE")]
TABLE_COLUMNS = ["dataset", "metric", "column", "model", "variant", "cell", "status", "mean", "std", "seeds"]
TEST_COLUMNS = [
    "dataset",
    "metric",
    "better",
    "other",
    "better_cell",
    "status",
    "better_mean",
    "other_mean",
    "improvement_pct",
    "student_p",
    "wilcoxon",
    "paired_t",
]


def _runs_of(runs: pd.DataFrame, dataset: str, model: str, variant: str) -> pd.DataFrame:
    if not len(runs):
        return runs
    return runs[(runs["dataset"] == dataset) & (runs["model"] == model) & (runs["variant"] == variant)]


def table(runs: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """Per benchmark and metric: the paper's ELCRec, then each of our columns (mean, std, seeds)."""
    rows = []
    for dataset in BENCHMARKS:
        for metric in METRICS:
            published = paper["table1"][dataset]["ELCRec"][metric]
            rows.append({"dataset": dataset, "metric": metric, "column": PUBLISHED, "status": "ok", "mean": published})
            for column, (model, variant) in COLUMNS.items():
                values = _runs_of(runs, dataset, model, variant)
                values = values[f"test_{metric}"].astype(float) if len(values) else pd.Series(dtype=float)
                row = {
                    "dataset": dataset,
                    "metric": metric,
                    "column": column,
                    "model": model,
                    "variant": variant,
                    "cell": stats.cell_id(dataset, model, variant),
                    "status": "ok" if len(values) else "missing",
                }
                if len(values):
                    row |= {
                        "mean": float(values.mean()),
                        "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                        "seeds": len(values),
                    }
                rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def tests(runs: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, metric and compared pair: the means, the gain in %, the paper's two-sided seed
    t-test, and the Wilcoxon and paired t-tests over users on the seed-averaged metric."""
    rows = []
    for dataset in BENCHMARKS:
        for better, other in COMPARISONS:
            sides = [_runs_of(runs, dataset, *COLUMNS[name]) for name in (better, other)]
            for metric in METRICS:
                row = {
                    "dataset": dataset,
                    "metric": metric,
                    "better": better,
                    "other": other,
                    "better_cell": stats.cell_id(dataset, *COLUMNS[better]),
                }
                if not all(len(side) for side in sides):
                    rows.append(row | {"status": "missing"})
                    continue
                first, second = (side[f"test_{metric}"].astype(float).to_numpy() for side in sides)
                paired = stats.paired_user_tests(
                    *(stats.seed_averaged_user_metric(side["run_dir"].tolist(), metric) for side in sides)
                )
                base = second.mean()
                rows.append(
                    row
                    | {
                        "status": "ok",
                        "better_mean": float(first.mean()),
                        "other_mean": float(base),
                        "improvement_pct": 100.0 * (first.mean() - base) / base if base else None,
                        "student_p": stats.seed_test(first, second),
                    }
                    | paired
                )
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def wanted_runs() -> list[tuple[str, str, str, str]]:
    """(table, dataset, model, variant) of every run cell the section shows, for the missing-runs list."""
    return [(TABLE, dataset, model, variant) for dataset in BENCHMARKS for model, variant in COLUMNS.values()]

"""Seed aggregation and significance tests over run directories (the first half of issue 4).

- `collect_runs`: every `results/runs/{dataset}/{model}/{variant}/seed{seed}/metrics.json` into
  one tidy table (dataset, model, variant, seed, split, metric, value, run_dir).
- `aggregate`: per cell the mean, the standard deviation over seeds (ddof=1; NaN for one seed)
  and the number of seeds.
- `rank_cells`: best and runner-up per dataset and metric (ties share a rank) and the
  improvement of the best over the runner-up in %.
- `seed_test`: the paper's two-sided two-sample t-test over seed values (Student; Welch as an
  option); None with fewer than two seeds on a side, never a made-up value.
- `compare_with_paper`: the difference to a published value and the reproduction flag.
- `paired_user_tests`: beyond the paper, Wilcoxon signed-rank and paired t-test on per-user
  metric values (from `user_ranks.npz`, averaged over seeds), and `holm` for a family of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from elcrec import ElcrecError

CELL = ["dataset", "model", "variant", "split", "metric"]


def cell_id(dataset: str, model: str, variant: str) -> str:
    """Anchor of one (dataset, model, variant) cell in the report's provenance section."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{dataset}--{model}--{variant}")


def collect_runs(root: str | Path) -> pd.DataFrame:
    rows = []
    for path in sorted(Path(root).glob("*/*/*/seed*/metrics.json")):
        run_dir = path.parent
        dataset, model, variant = run_dir.parts[-4:-1]
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            seed = int(run_dir.name.removeprefix("seed"))
        except (json.JSONDecodeError, ValueError) as error:
            raise ElcrecError(f"{path}: not a run's metrics.json ({error})") from error
        for split in ("test", "valid"):
            for metric, value in record.get(split, {}).items():
                rows.append((dataset, model, variant, seed, split, metric, float(value), str(run_dir)))
    columns = ["dataset", "model", "variant", "seed", "split", "metric", "value", "run_dir"]
    return pd.DataFrame(rows, columns=columns)


def aggregate(tidy: pd.DataFrame) -> pd.DataFrame:
    grouped = tidy.groupby(CELL, sort=True)["value"]
    table = grouped.agg(mean="mean", std=lambda values: values.std(ddof=1), seeds="count").reset_index()
    return table


def rank_cells(table: pd.DataFrame, entity: list[str] | None = None) -> pd.DataFrame:
    """Adds `rank` (1 = best, ties share the smallest rank) per (dataset, split, metric), and for the
    best cell the runner-up's mean and the improvement over it in %."""
    entity = entity or ["model", "variant"]
    ranked = table.copy()
    ranked["rank"] = ranked.groupby(["dataset", "split", "metric"])["mean"].rank(method="min", ascending=False)
    ranked["rank"] = ranked["rank"].astype(int)
    ranked["runner_up_mean"] = np.nan
    ranked["improvement_pct"] = np.nan
    for _, group in ranked.groupby(["dataset", "split", "metric"]):
        means = np.sort(group["mean"].unique())[::-1]
        if len(means) < 2:
            continue
        best = group.index[group["mean"] == means[0]]
        ranked.loc[best, "runner_up_mean"] = means[1]
        if means[1] != 0:
            ranked.loc[best, "improvement_pct"] = 100.0 * (means[0] - means[1]) / means[1]
    return ranked


def seed_test(first: list[float] | np.ndarray, second: list[float] | np.ndarray, welch: bool = False) -> float | None:
    """Two-sided two-sample t-test p-value over the seed values; None when a side has < 2 seeds."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(first) < 2 or len(second) < 2:
        return None
    return float(scipy_stats.ttest_ind(first, second, equal_var=not welch).pvalue)


def per_user_metric(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-user value of HR@k, NDCG@k or MRR from 0-based target ranks."""
    ranks = np.asarray(ranks, dtype=float)
    if metric == "MRR":
        return 1.0 / (ranks + 1.0)
    name, _, k = metric.partition("@")
    if name not in ("HR", "NDCG") or not k.isdigit():
        raise ValueError(f"metric must be HR@k, NDCG@k or MRR, got {metric!r}")
    hit = ranks < int(k)
    return hit.astype(float) if name == "HR" else np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)


def seed_averaged_user_metric(run_dirs: list[str], metric: str) -> np.ndarray:
    """Per-user test metric averaged over the runs' seeds (from user_ranks.npz)."""
    values = []
    for run_dir in run_dirs:
        with np.load(Path(run_dir) / "user_ranks.npz") as ranks:
            values.append(per_user_metric(ranks["test"], metric))
    return np.mean(values, axis=0)


def paired_user_tests(first: np.ndarray, second: np.ndarray) -> dict[str, float | None]:
    """Wilcoxon signed-rank and paired t-test p-values on per-user values (same users, same order)."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if first.shape != second.shape:
        raise ValueError(f"paired tests need the same users: {first.shape} vs {second.shape}")
    differences = first - second
    if len(differences) < 2 or not np.any(differences):
        return {"wilcoxon": None, "paired_t": None}
    return {
        "wilcoxon": float(scipy_stats.wilcoxon(first, second).pvalue),
        "paired_t": float(scipy_stats.ttest_rel(first, second).pvalue),
    }


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (monotone, capped at 1); None entries stay None."""
    present = [(p, index) for index, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    count = len(present)
    for order, (p, index) in enumerate(sorted(present)):
        running = max(running, min(1.0, (count - order) * p))
        adjusted[index] = running
    return adjusted


def load_paper(path: str | Path) -> dict:
    import yaml

    paper = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(paper, dict) or "table1" not in paper or "run_names" not in paper:
        raise ElcrecError(f"{path}: expected the paper's tables with `table1` and `run_names`")
    return paper


def compare_with_paper(mean: float, std: float, seeds: int, published: float | None, tolerance_pct: float) -> dict:
    """Our cell beside the paper's value: difference, relative gap in %, and `flag` when the paper's
    value lies outside mean +- 2 std (with at least two seeds) or the gap exceeds `tolerance_pct`."""
    if published is None:
        return {"difference": None, "relative_pct": None, "flag": False}
    difference = mean - published
    relative = 100.0 * difference / published if published else float("nan")
    outside = seeds >= 2 and abs(difference) > 2 * std
    return {"difference": difference, "relative_pct": relative, "flag": bool(outside or abs(relative) > tolerance_pct)}

"""Per-run evidence beyond the seed-level tables: training curves (Figure 3), the sensitivity
sweep (Figure 2), the same weights tested under both history maskings (Paper vs code) and the
named departures from a model's official settings beside its Table 1 column."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from elcrec import stats
from elcrec.report.datasets import BENCHMARKS

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
    """Figure 2: HR@5 against alpha and k on the four benchmarks; the paper-setting ELCRec run is a
    point on both curves (ML-1M and MIND-small have no sweep in the paper)."""
    rows = []
    for run in runs[(runs["model"] == "elcrec") & runs["dataset"].isin(BENCHMARKS)].to_dict("records"):
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
        if pd.isna(run.get("other_masking")):
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


DEPARTURE_COLUMNS = [
    "dataset",
    "model",
    "variant",
    "official_variant",
    "metric",
    "mean",
    "std",
    "seeds",
    "official_mean",
    "paper",
    "cell",
    "official_cell",
    "wilcoxon",
    "wilcoxon_holm",
]


def departures(runs: pd.DataFrame, table1: pd.DataFrame, skip_variants: tuple[str, ...]) -> pd.DataFrame:
    """Every other variant of a Table 1 model (config `models.M.variants`: BPR-MF `adam-lr1e-3`, ELCRec
    `random-init`), per metric beside the Table 1 column it departs from (ours, official settings)
    and the paper, with a Wilcoxon signed-rank test of the two on the seed-averaged per-user
    metric (Holm-corrected over the whole table; None where either side has no runs).

    `skip_variants` belong to other tables (the ablation's, the timing runs); sensitivity points
    (`alpha-0.1`, `k-64`) are Figure 2's."""
    if not len(runs) or not len(table1):
        return pd.DataFrame(columns=DEPARTURE_COLUMNS)
    columns = table1.set_index(["dataset", "model", "metric"]).sort_index()
    rows = []
    for (dataset, model, variant), group in runs.groupby(["dataset", "model", "variant"], sort=True):
        if variant in skip_variants or SENSITIVITY_VARIANT.match(variant):
            continue
        if (dataset, model, METRICS[0]) not in columns.index:
            continue
        official = columns.loc[(dataset, model)]
        official_variant = official["variant"].iloc[0]
        if variant == official_variant:
            continue
        same_column = (runs["dataset"] == dataset) & (runs["model"] == model) & (runs["variant"] == official_variant)
        official_dirs = runs.loc[same_column, "run_dir"].tolist()
        for metric in METRICS:
            values = group[f"test_{metric}"].astype(float)
            column = official.loc[metric]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "variant": variant,
                    "official_variant": column["variant"],
                    "metric": metric,
                    "mean": values.mean(),
                    "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                    "seeds": len(values),
                    "official_mean": column.get("mean", np.nan),
                    "paper": column["paper"],
                    "cell": group["cell"].iloc[0],
                    "official_cell": column["cell"],
                    "wilcoxon": _paired_wilcoxon(group["run_dir"].tolist(), official_dirs, metric),
                }
            )
    table = pd.DataFrame(rows, columns=DEPARTURE_COLUMNS)
    table["wilcoxon_holm"] = stats.holm([None if pd.isna(p) else p for p in table["wilcoxon"]])
    return table


def _paired_wilcoxon(dirs: list[str], other_dirs: list[str], metric: str) -> float | None:
    if not dirs or not other_dirs:
        return None
    first, second = (stats.seed_averaged_user_metric(d, metric) for d in (dirs, other_dirs))
    return stats.paired_user_tests(first, second)["wilcoxon"]


def _affinities(points: np.ndarray, perplexity: float) -> np.ndarray:
    """Symmetric input affinities P: per point a Gaussian whose width gives the target perplexity
    (binary search on the precision), then (P + P^T) / 2n."""
    squared = np.maximum(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1), 0.0)
    n, target = len(points), np.log(perplexity)
    conditional = np.zeros((n, n))
    for i in range(n):
        distances = np.delete(squared[i], i)
        low, high, precision = 0.0, np.inf, 1.0
        for _ in range(64):
            weights = np.exp(-(distances - distances.min()) * precision)
            probabilities = weights / weights.sum()
            entropy = -np.sum(probabilities * np.log(np.maximum(probabilities, 1e-300)))
            if abs(entropy - target) < 1e-5:
                break
            if entropy > target:  # too flat: narrow the Gaussian
                low, precision = precision, precision * 2 if high == np.inf else (precision + high) / 2
            else:
                high, precision = precision, (precision + low) / 2
        conditional[i, np.arange(n) != i] = probabilities
    return np.maximum((conditional + conditional.T) / (2 * n), 1e-12)


def tsne_2d(points: np.ndarray, perplexity: float = 30.0, iterations: int = 750, seed: int = 0) -> np.ndarray:
    """Exact t-SNE (van der Maaten and Hinton, 2008) into 2-D: O(n^2) per step, quick for the
    few hundred users of a snapshot. Early exaggeration 12 for 250 steps, momentum 0.5 then 0.8,
    per-coordinate gains; deterministic for a seed."""
    n = len(points)
    affinities = _affinities(np.asarray(points, dtype=np.float64), max(perplexity, 1.0))
    layout = np.random.default_rng(seed).normal(0.0, 1e-4, (n, 2))
    velocity, gains = np.zeros_like(layout), np.ones_like(layout)
    rate = max(n / 12 / 4, 50.0)
    for step in range(iterations):
        exaggeration, momentum = (12.0, 0.5) if step < 250 else (1.0, 0.8)
        norms = (layout**2).sum(1)
        kernel = 1.0 / (1.0 + np.maximum(norms[:, None] + norms[None, :] - 2.0 * layout @ layout.T, 0.0))
        np.fill_diagonal(kernel, 0.0)
        similarities = np.maximum(kernel / kernel.sum(), 1e-12)
        forces = (exaggeration * affinities - similarities) * kernel
        gradient = 4.0 * (forces.sum(1)[:, None] * layout - forces @ layout)
        same_sign = np.sign(gradient) == np.sign(velocity)
        gains = np.maximum(np.where(same_sign, gains * 0.8, gains + 0.2), 0.01)
        velocity = momentum * velocity - rate * gains * gradient
        layout = layout + velocity
        layout -= layout.mean(0)
    return layout


def tsne(runs: pd.DataFrame) -> pd.DataFrame:
    """Figure 6: t-SNE of the sampled users' embeddings at the first, a middle and the best-weights
    snapshot of each dataset's first ELCRec seed, with the intent each user is assigned to."""
    columns = ["dataset", "seed", "panel", "label", "x", "y", "intent", "cell"]
    rows = []
    elcrec = runs[(runs["model"] == "elcrec") & (runs["variant"] == "ELCRec")].sort_values("seed")
    for dataset, group in elcrec.groupby("dataset", sort=True):
        found = [run for run in group.to_dict("records") if (Path(run["run_dir"]) / "embeddings.npz").exists()]
        if not found:
            continue
        run = found[0]
        with np.load(Path(run["run_dir"]) / "embeddings.npz") as saved:
            labels, embeddings, intents = saved["labels"], saved["embeddings"], saved["intents"]
        chosen = sorted({0, (len(labels) - 1) // 2, len(labels) - 1})
        for panel, index in enumerate(chosen):
            points = embeddings[index].astype(np.float64)
            coordinates = tsne_2d(points, perplexity=min(30.0, (len(points) - 1) / 3))
            for (x, y), intent in zip(coordinates, intents[index], strict=True):
                rows.append((dataset, run["seed"], panel, str(labels[index]), x, y, int(intent), run["cell"]))
    return pd.DataFrame(rows, columns=columns)

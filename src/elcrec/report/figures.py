"""The paper's figures as PNG files, drawn from results/tables only (matplotlib, no display).

Each function returns the PNG path, or None when its table has no rows (the report then says
which runs are missing instead of showing an empty plot).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from elcrec.report.tables import ABLATION_VARIANTS, TABLE1_DATASETS  # noqa: E402

DPI = 110


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    temporary.replace(path)
    return path


def _datasets_and_axes(frame: pd.DataFrame, rows: int) -> tuple[list[str], plt.Figure, np.ndarray]:
    """The frame's datasets (the paper's order first) and a grid with one column per dataset."""
    datasets = [d for d in TABLE1_DATASETS if (frame["dataset"] == d).any()]
    datasets += sorted(set(frame["dataset"]) - set(datasets))
    figure, axes = plt.subplots(rows, len(datasets), figsize=(3.2 * len(datasets), 2.6 * rows), squeeze=False)
    return datasets, figure, axes


def ablation_bars(table10: pd.DataFrame, path: Path) -> Path | None:
    """Figure 1: HR@5 + HR@20 + NDCG@5 + NDCG@20 per ablation variant, ours (mean +- std) and the paper's."""
    present = [
        d
        for d in TABLE1_DATASETS
        if (table10["dataset"] == d).any() and table10.loc[table10["dataset"] == d, "status"].eq("ok").any()
    ]
    if not present:
        return None
    figure, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 3.0), squeeze=False)
    x = np.arange(len(ABLATION_VARIANTS))
    for axis, dataset in zip(axes[0], present, strict=True):
        rows = table10[table10["dataset"] == dataset].set_index("variant").reindex(ABLATION_VARIANTS)
        axis.bar(x - 0.2, rows["paper"], 0.4, label="paper", color="#bbbbbb")
        axis.bar(x + 0.2, rows["mean"], 0.4, yerr=rows["std"].fillna(0), label="ours", color="#3b6ea8", capsize=3)
        axis.set_xticks(x, ABLATION_VARIANTS, rotation=30, fontsize=8)
        axis.set_title(dataset)
    axes[0][0].set_ylabel("sum of the four metrics")
    axes[0][0].legend(fontsize=8)
    return _save(figure, path)


def sensitivity_lines(sensitivity: pd.DataFrame, path: Path) -> Path | None:
    """Figure 2: test HR@5 against alpha and against k (mean over seeds), one column per dataset."""
    if not len(sensitivity):
        return None
    datasets, figure, axes = _datasets_and_axes(sensitivity, 2)
    for column, dataset in enumerate(datasets):
        for row, parameter in enumerate(("alpha", "k")):
            points = sensitivity[(sensitivity["dataset"] == dataset) & (sensitivity["parameter"] == parameter)]
            curve = points.groupby("value")["HR@5"].mean()
            axis = axes[row][column]
            axis.plot(curve.index, curve.values, marker="o", color="#3b6ea8")
            axis.set_xscale("log", base=10 if parameter == "alpha" else 2)
            axis.set_xlabel(parameter)
            axis.set_title(dataset, fontsize=9)
        axes[0][column].set_ylabel("test HR@5")
        axes[1][column].set_ylabel("test HR@5")
    figure.tight_layout()
    return _save(figure, path)


def convergence_curves(convergence: pd.DataFrame, path: Path) -> Path | None:
    """Figure 3: validation HR@5 (top) and training loss (bottom) per epoch, one line per seed."""
    figure = convergence_figure(convergence)
    return None if figure is None else _save(figure, path)


def convergence_figure(convergence: pd.DataFrame) -> plt.Figure | None:
    """Figure 3's axes, ticks at whole epochs only: matplotlib's default locator puts ticks at
    0.25, 0.5, ... on a short run (the smoke's 3 epochs), and there is no epoch 0.5."""
    if not len(convergence):
        return None
    datasets, figure, axes = _datasets_and_axes(convergence, 2)
    for column, dataset in enumerate(datasets):
        for seed, rows in convergence[convergence["dataset"] == dataset].groupby("seed"):
            axes[0][column].plot(rows["epoch"], rows["valid_HR@5"], label=f"seed {seed}")
            axes[1][column].plot(rows["epoch"], rows["loss"], label=f"seed {seed}")
        axes[0][column].set_title(dataset)
        axes[1][column].set_xlabel("epoch")
    axes[0][0].set_ylabel("validation HR@5")
    axes[1][0].set_ylabel("training loss")
    axes[0][0].legend(fontsize=8)
    for axis in axes.flat:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return figure


def tsne_panels(tsne: pd.DataFrame, path: Path) -> Path | None:
    """Figure 6: one row per dataset, one panel per snapshot, users coloured by assigned intent."""
    if not len(tsne):
        return None
    datasets = [d for d in TABLE1_DATASETS if (tsne["dataset"] == d).any()]
    datasets += sorted(set(tsne["dataset"]) - set(datasets))
    panels = int(tsne["panel"].max()) + 1
    figure, axes = plt.subplots(len(datasets), panels, figsize=(3.0 * panels, 3.0 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for panel in range(panels):
            axis = axes[row][panel]
            points = tsne[(tsne["dataset"] == dataset) & (tsne["panel"] == panel)]
            axis.set_xticks([])
            axis.set_yticks([])
            if not len(points):
                axis.set_axis_off()
                continue
            axis.scatter(points["x"], points["y"], c=points["intent"] % 20, cmap="tab20", s=5, linewidths=0)
            axis.set_title(f"{dataset}: {points['label'].iloc[0]}", fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def scale_plot(scale: pd.DataFrame | None, path: Path) -> Path | None:
    """The scale study (beyond the paper): seconds and peak memory against users, log-log."""
    if scale is None or not len(scale):
        return None
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    step = scale[scale["method"] == "elcrec_step"].sort_values("users")
    estep = scale[scale["method"] == "iclrec_estep"].sort_values("users")
    lines = [
        (step, "seconds", "ELCRec: one cluster-loss step", "#3b6ea8", "-"),
        (step, "epoch_seconds", "ELCRec: an epoch of cluster steps (U/b)", "#3b6ea8", "--"),
        (estep, "seconds", "ICLRec: one E-step (encode + k-means)", "#c0504d", "-"),
        (estep, "kmeans_seconds", "ICLRec: its k-means alone", "#c0504d", ":"),
    ]
    for rows, column, label, colour, style in lines:
        time_axis.plot(rows["users"], rows[column], marker="o", color=colour, linestyle=style, label=label)
    for rows, label, colour in ((step, "ELCRec step", "#3b6ea8"), (estep, "ICLRec E-step", "#c0504d")):
        memory_axis.plot(rows["users"], rows["peak_memory_mb"].clip(lower=0.1), marker="o", color=colour, label=label)
    for axis, ylabel in ((time_axis, "seconds"), (memory_axis, "peak memory above baseline (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("users")
        axis.set_ylabel(ylabel)
    time_axis.legend(fontsize=7)
    memory_axis.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


def draw_all(tables: dict[str, pd.DataFrame], out_dir: Path) -> dict[str, Path | None]:
    return {
        "scale": scale_plot(tables.get("scale"), out_dir / "scale_study.png"),
        "figure1": ablation_bars(tables["table10"], out_dir / "figure1_ablation.png"),
        "figure2": sensitivity_lines(tables["sensitivity"], out_dir / "figure2_sensitivity.png"),
        "figure3": convergence_curves(tables["convergence"], out_dir / "figure3_convergence.png"),
        "figure6": tsne_panels(tables["tsne"], out_dir / "figure6_tsne.png"),
    }

"""report/figures.py: PNGs from the tables; None (not an empty plot) when a table has no rows."""

import pandas as pd

from elcrec.report import figures


def is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_are_drawn_from_table_rows(tmp_path):
    table10 = pd.DataFrame(
        [
            {"dataset": "beauty", "variant": v, "paper": 0.24, "mean": 0.2 + i / 100, "std": 0.01, "status": "ok"}
            for i, v in enumerate(["B", "B+ICL", "B+ELCM", "ELCRec"])
        ]
    )
    sensitivity = pd.DataFrame(
        [
            {"dataset": "beauty", "parameter": p, "value": v, "seed": 1, "HR@5": 0.05}
            for p in ("alpha", "k")
            for v in (1, 8)
        ]
    )
    convergence = pd.DataFrame(
        [{"dataset": "beauty", "seed": 1, "epoch": e, "valid_HR@5": e / 10, "loss": 1 - e / 10} for e in range(3)]
    )
    tsne = pd.DataFrame(
        [
            {"dataset": "beauty", "panel": p, "label": f"epoch {p}", "x": i, "y": -i, "intent": i % 3}
            for p in (0, 1)
            for i in range(9)
        ]
    )
    scale = pd.DataFrame(
        [
            {
                "method": m,
                "users": u,
                "seconds": 0.1,
                "kmeans_seconds": 0.05,
                "epoch_seconds": u / 100,
                "peak_memory_mb": 0,
            }
            for m in ("elcrec_step", "iclrec_estep")
            for u in (1000, 10000)
        ]
    )
    tables = {"table10": table10, "sensitivity": sensitivity, "convergence": convergence, "tsne": tsne, "scale": scale}
    paths = figures.draw_all(tables, tmp_path / "figures")
    assert set(paths) == {"figure1", "figure2", "figure3", "figure6", "scale"}
    assert all(path is not None and is_png(path) for path in paths.values())
    assert not list((tmp_path / "figures").glob("*.tmp.png"))


def test_no_rows_no_figure(tmp_path):
    empty10 = pd.DataFrame([{"dataset": "beauty", "variant": "B", "paper": 0.24, "status": "missing"}])
    assert figures.ablation_bars(empty10, tmp_path / "a.png") is None
    assert figures.sensitivity_lines(pd.DataFrame(), tmp_path / "b.png") is None
    assert figures.convergence_curves(pd.DataFrame(), tmp_path / "c.png") is None
    assert figures.tsne_panels(pd.DataFrame(), tmp_path / "d.png") is None
    assert figures.scale_plot(None, tmp_path / "e.png") is None
    assert not list(tmp_path.iterdir())


def test_figure_3_ticks_whole_epochs_only():
    import matplotlib.pyplot as plt

    convergence = pd.DataFrame(
        [
            {"dataset": dataset, "seed": seed, "epoch": e, "valid_HR@5": e / 10, "loss": 1 - e / 10}
            for dataset in ("beauty", "ml-1m")
            for seed in (1, 2)
            for e in range(3)  # 0..2: the default locator would tick at 0.25, 0.5, ...
        ]
    )
    figure = figures.convergence_figure(convergence)
    try:
        for axis in figure.axes:
            low, high = axis.get_xlim()
            shown = [tick for tick in axis.get_xticks() if low <= tick <= high]
            assert len(shown) >= 2 and all(float(tick).is_integer() for tick in shown)
    finally:
        plt.close(figure)
    assert figures.convergence_figure(pd.DataFrame()) is None

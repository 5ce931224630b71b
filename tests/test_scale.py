"""scale.py: the scale study's points, each measured in its own process, and its CSV."""

import mmap
import time

import pandas as pd
import pytest
import torch

from elcrec import ElcrecError
from elcrec.scale import COLUMNS, PeakMemory, _synthetic_sequences, run


def test_synthetic_sequences_are_left_padded_with_5_to_max_len_items():
    sequences = _synthetic_sequences(200, 30, 10, torch.Generator().manual_seed(0))
    lengths = (sequences > 0).sum(dim=1)
    assert sequences.shape == (200, 10) and int(lengths.min()) >= 5 and int(lengths.max()) <= 10
    first = 10 - lengths
    assert all(
        bool((row[: int(start)] == 0).all()) and bool((row[int(start) :] > 0).all())
        for row, start in zip(sequences, first, strict=True)
    )


def test_points_and_their_csv(tmp_path):
    out = tmp_path / "scale" / "scale.csv"
    table = run([600, 2400], out, clusters=4, hidden=8, steps=2, items=50, max_len=10)
    assert list(table.columns) == COLUMNS and out.exists()
    assert pd.read_csv(out).shape == (4, len(COLUMNS))
    step = table[table["method"] == "elcrec_step"].set_index("users")
    estep = table[table["method"] == "iclrec_estep"].set_index("users")
    assert (step["seconds"] > 0).all() and (estep["seconds"] > 0).all()
    # an epoch of cluster steps is ceil(U / b) steps; the E-step is encoding plus k-means
    assert step.loc[2400, "epoch_seconds"] == pytest.approx(step.loc[2400, "seconds"] * 10)
    assert estep["seconds"].tolist() == pytest.approx((estep["encode_seconds"] + estep["kmeans_seconds"]).tolist())
    assert (table["peak_memory_mb"] >= 0).all()


def test_user_counts_must_exceed_the_clusters(tmp_path):
    with pytest.raises(ElcrecError, match="must exceed the 256 clusters"):
        run([100], tmp_path / "scale.csv")


def test_peak_memory_sees_a_transient_allocation():
    size = 96 * 2**20
    with PeakMemory() as memory:
        # fresh anonymous pages (malloc could reuse memory freed earlier in this process), touched
        block = mmap.mmap(-1, size)
        block.write(b"x" * size)
        time.sleep(0.05)
        block.close()
    assert memory.peak_bytes > 64 * 2**20

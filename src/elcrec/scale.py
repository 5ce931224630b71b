"""The scale study (beyond the paper): the paper claims ELCRec's intent learning costs a mini-batch,
not a pass over all users. On synthetic data with U users this measures

- `elcrec_step`: one ELCRec cluster-loss step (b user embeddings against k centres: loss,
  backward, Adam step), and the clustering cost of an epoch, U / b such steps;
- `iclrec_estep`: one ICLRec E-step: encode every user (the 1-layer backbone, eval mode, mean
  over positions, as the reference) and k-means over the U embeddings (faiss, 20 iterations,
  best of 5), which ICLRec repeats every epoch;

each point in a fresh process; its peak memory is the most resident memory above the level at
the start of the timed work (inputs built), sampled by a thread. Wall seconds on this machine.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from elcrec import ElcrecError
from elcrec.fileio import write_text_atomic
from elcrec.runinfo import current_memory_bytes, device_description

COLUMNS = [
    "method",
    "users",
    "seconds",
    "encode_seconds",
    "kmeans_seconds",
    "epoch_seconds",
    "peak_memory_mb",
    "device",  # where it was measured (CPU model and threads)
]
METHODS = ("elcrec_step", "iclrec_estep")
CPU = torch.device("cpu")


class PeakMemory:
    """The most resident memory above the level at entry, sampled every `interval` seconds by a
    background thread while the block runs (the process's lifetime peak would include setup)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak_bytes = interval, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, current_memory_bytes(CPU) - self.baseline)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.baseline = current_memory_bytes(CPU)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, current_memory_bytes(CPU) - self.baseline)


def _synthetic_sequences(users: int, items: int, max_len: int, generator: torch.Generator) -> torch.Tensor:
    """[users, max_len] left-padded sequences of 5..max_len random items (int32 to halve memory)."""
    lengths = torch.randint(5, max_len + 1, (users, 1), generator=generator, dtype=torch.int32)
    sequences = torch.randint(1, items, (users, max_len), generator=generator, dtype=torch.int32)
    columns = torch.arange(max_len, dtype=torch.int32)[None, :]
    return torch.where(columns >= max_len - lengths, sequences, torch.zeros_like(sequences))


def _measure(method: str, users: int, options: dict) -> dict:
    """One point, in its own process: the timed work and its peak memory above the baseline."""
    from elcrec.models.backbone import Backbone, BackboneSettings
    from elcrec.models.base import encode_in_blocks
    from elcrec.models.kmeans import kmeans
    from elcrec.models.losses import cluster_loss

    torch.set_num_threads(options["threads"])
    generator = torch.Generator().manual_seed(options["seed"])
    hidden, clusters, batch = options["hidden"], options["clusters"], options["batch_size"]
    row = {"method": method, "users": users}
    if method == "elcrec_step":
        centres = torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(clusters, hidden, generator=generator)))
        optimizer = torch.optim.Adam([centres], lr=1e-3)
        embeddings = torch.nn.functional.normalize(torch.randn(batch, hidden, generator=generator), dim=1)
        with PeakMemory() as memory:
            started = time.perf_counter()
            for _ in range(options["steps"]):
                loss = cluster_loss(embeddings, centres, alpha=1.0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            step = (time.perf_counter() - started) / options["steps"]
        row |= {"seconds": step, "epoch_seconds": step * -(-users // batch)}
    else:
        sequences = _synthetic_sequences(users, options["items"], options["max_len"], generator)
        settings = BackboneSettings(hidden_size=hidden, layers=1, max_len=options["max_len"])
        backbone = Backbone(options["items"] + 1, settings).eval()
        with PeakMemory() as memory:
            started = time.perf_counter()
            with torch.no_grad():
                pooled = encode_in_blocks(lambda block: backbone(block.long()).mean(dim=1), sequences, 256)
            encoded = time.perf_counter()
            kmeans(pooled, clusters, options["seed"])
            finished = time.perf_counter()
        row |= {
            "seconds": finished - started,
            "encode_seconds": encoded - started,
            "kmeans_seconds": finished - encoded,
            "epoch_seconds": finished - started,
        }
    row["peak_memory_mb"] = memory.peak_bytes / 2**20
    row["device"] = device_description(CPU)
    return row


def run(
    user_counts: list[int],
    out: str | Path,
    clusters: int = 256,
    hidden: int = 64,
    batch_size: int = 256,
    steps: int = 50,
    items: int = 12_000,
    max_len: int = 50,
    threads: int = 1,
    seed: int = 1,
) -> pd.DataFrame:
    """Every (method, users) point in a fresh process -> a CSV at `out` (written atomically)."""
    if any(users <= clusters for users in user_counts):
        raise ElcrecError(f"scale: every user count must exceed the {clusters} clusters, got {user_counts}")
    options = {
        "clusters": clusters,
        "hidden": hidden,
        "batch_size": batch_size,
        "steps": steps,
        "items": items,
        "max_len": max_len,
        "threads": threads,
        "seed": seed,
    }
    points = [(method, users) for users in sorted(user_counts) for method in METHODS]
    rows = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        for method, users in tqdm(points, desc="scale study", unit="point", disable=None):
            rows.append(pool.apply(_measure, (method, users, options)))
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_text_atomic(Path(out), table.to_csv(index=False))
    return table

"""User-embedding snapshots for the t-SNE figure (the paper's Figure 6): a fixed sample of
training users, encoded in eval mode at the end of epochs 0, 1, 2, 4, 8, ... and with the best
weights, with the intent each is assigned to. Stored as float16 in the run's `embeddings.npz`
(about 64 KB per snapshot); eval mode draws no random numbers, so runs stay bit-repeatable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from elcrec.fileio import atomic_path

SAMPLE_USERS = 512


def sample_users(n_users: int) -> np.ndarray:
    """The same users for every run and seed of a dataset (a fixed permutation, sorted)."""
    return np.sort(np.random.default_rng(0).permutation(n_users)[:SAMPLE_USERS])


def is_snapshot_epoch(epoch: int) -> bool:
    return epoch == 0 or (epoch & (epoch - 1)) == 0


@torch.no_grad()
def take(model, inputs: torch.Tensor, users: np.ndarray, device: torch.device, batch_size: int = 256) -> dict:
    was_training = model.training
    model.eval()
    embeddings, intents = [], []
    for start in range(0, len(inputs), batch_size):
        rows = slice(start, start + batch_size)
        batch = {"input": inputs[rows].to(device), "users": torch.as_tensor(users[rows], device=device)}
        vectors, assigned = model.user_snapshot(batch)
        embeddings.append(vectors.float().cpu())
        intents.append(assigned.cpu() if assigned is not None else torch.full((len(vectors),), -1))
    model.train(was_training)
    return {
        "embeddings": torch.cat(embeddings).numpy().astype(np.float16),
        "intents": torch.cat(intents).numpy().astype(np.int32),
    }


def write(path: str | Path, users: np.ndarray, snapshots: list[dict]) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(
            handle,
            users=users,
            epochs=np.array([snapshot["epoch"] for snapshot in snapshots], dtype=np.int32),
            labels=np.array([snapshot["label"] for snapshot in snapshots]),
            embeddings=np.stack([snapshot["embeddings"] for snapshot in snapshots]),
            intents=np.stack([snapshot["intents"] for snapshot in snapshots]),
        )

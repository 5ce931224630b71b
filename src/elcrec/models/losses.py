"""The contrastive and clustering losses of the ICLRec/ELCRec code base (PROTOCOL.md).

`info_nce` is the reference's NT-Xent: for two batches of b samples, each sample's positive is
its partner in the other batch, and its negatives are every other sample of both batches
(dot-product similarity over the temperature, its own self-similarity removed). The loss is
the mean cross-entropy over all 2b rows.

`cluster_loss` is ELCRec's Eq. 3 as the code computes it: the mean squared distance of every
(user, centre) pair minus the mean squared distance of every (centre, centre) pair. `code`
averages over all k*k pairs (zero diagonal included), `paper` over the k*(k-1) distinct pairs.
"""

from __future__ import annotations

import torch
from torch.nn import functional

CLUSTER_LOSS_MODES = ("code", "paper")


def info_nce(one: torch.Tensor, two: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """one, two: [b, features]; row i of `one` and row i of `two` form the positive pair."""
    size = one.shape[0]
    self_mask = torch.eye(size, dtype=torch.bool, device=one.device)
    sim_12 = one @ two.T / temperature
    sim_11 = (one @ one.T / temperature).masked_fill(self_mask, -torch.inf)
    sim_22 = (two @ two.T / temperature).masked_fill(self_mask, -torch.inf)
    logits = torch.cat([torch.cat([sim_12, sim_11], dim=1), torch.cat([sim_22, sim_12.T], dim=1)], dim=0)
    labels = torch.arange(2 * size, device=one.device)
    return functional.cross_entropy(logits, labels)


def squared_distances(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[n, d], [k, d] -> [n, k] squared Euclidean distances, expanded as the reference does."""
    return (points * points).sum(-1)[:, None] + (centres * centres).sum(-1)[None, :] - 2 * points @ centres.T


def cluster_loss(embeddings: torch.Tensor, centres: torch.Tensor, alpha: float, mode: str = "code") -> torch.Tensor:
    """alpha * (mean user-centre distance - mean centre-centre distance); inputs are unit vectors."""
    if mode not in CLUSTER_LOSS_MODES:
        raise ValueError(f"cluster_loss must be one of {CLUSTER_LOSS_MODES}, got {mode!r}")
    user_centre = squared_distances(embeddings, centres).mean()
    centre_centre = squared_distances(centres, centres)
    k = centres.shape[0]
    if mode == "code":
        spread = centre_centre.mean()
    else:
        spread = (centre_centre.sum() - centre_centre.diagonal().sum()) / max(k * (k - 1), 1)
    return alpha * (user_centre - spread)


def nearest_centre(states: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre (squared Euclidean) for every row of states [..., d].

    ||x||^2 is the same for every centre, so the argmin is taken over ||c||^2 - 2 x.c alone,
    in one fused matmul-add.
    """
    flat = states.reshape(-1, states.shape[-1])
    scores = torch.addmm((centres * centres).sum(-1)[None, :], flat, centres.T, alpha=-2)
    return scores.argmin(dim=-1).reshape(states.shape[:-1])

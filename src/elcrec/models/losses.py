"""The contrastive and clustering losses of the ICLRec/ELCRec code base (PROTOCOL.md).

`info_nce` is the reference's NT-Xent: for two batches of b samples, each sample's positive is
its partner in the other batch, and its negatives are every other sample of both batches
(dot-product similarity over the temperature, its own self-similarity removed). The loss is
the mean cross-entropy over all 2b rows.

`next_item_bce` is SASRec's loss as the code trains it; `next_item_ce` the full-softmax (or sampled)
cross-entropy the field trains SASRec with now (docs/BEYOND.md), chosen by `next_item_loss`;
`flattened_info_nce` CL4SRec's instance loss between two views
flattened over all positions; `intent_info_nce` ICLRec's and ELCRec's intent loss of the mean-pooled
views against the assigned intents.

`cluster_loss` is ELCRec's Eq. 3 as the code computes it: the mean squared distance of every
(user, centre) pair minus the mean squared distance of every (centre, centre) pair. `code`
averages over all k*k pairs (zero diagonal included), `paper` over the k*(k-1) distinct pairs.
"""

from __future__ import annotations

from collections.abc import Callable

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


LOG_EPSILON = 1e-24  # the reference's -log(sigmoid(x) + 1e-24)


def next_item_bce(
    outputs: torch.Tensor, embedding: Callable[[torch.Tensor], torch.Tensor], batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """SASRec's loss as the reference trains it (PROTOCOL.md "Next-item loss"): binary cross-entropy
    with one sampled negative per position, averaged over non-padding positions. outputs [b, L, d];
    `embedding` maps item ids to vectors (an nn.Embedding, or a graph model's item table);
    batch["target"], batch["negative"] [b, L] (0 at padding)."""
    positive_logits = (outputs * embedding(batch["target"])).sum(-1)
    negative_logits = (outputs * embedding(batch["negative"])).sum(-1)
    is_target = (batch["target"] > 0).to(outputs.dtype)
    losses = -torch.log(torch.sigmoid(positive_logits) + LOG_EPSILON) - torch.log(
        1 - torch.sigmoid(negative_logits) + LOG_EPSILON
    )
    return (losses * is_target).sum() / is_target.sum().clamp(min=1)


NEXT_ITEM_LOSSES = ("bce", "ce", "sampled_ce")


def next_item_ce(
    outputs: torch.Tensor, item_table: torch.Tensor, batch: dict[str, torch.Tensor], negatives: int | None = None
) -> torch.Tensor:
    """Cross-entropy of every non-padding position's target against the real items 1..vocab-2 (the
    padding and mask rows of `item_table` [vocab, d] are not classes; the user's history is not
    masked), averaged over those positions. With `negatives`, a sampled softmax: the target against
    that many distinct items drawn uniformly for the step (shared by its positions; a draw equal to
    a position's target is left out of that position's softmax), so all items give the full loss."""
    valid = batch["target"] > 0
    states, targets = outputs[valid], batch["target"][valid]
    if len(targets) == 0:
        return outputs.sum() * 0
    items = item_table.shape[0] - 2
    if negatives is None:
        return functional.cross_entropy(states @ item_table[1 : items + 1].T, targets - 1)
    drawn = torch.randperm(items, device=outputs.device)[:negatives] + 1
    positive = (states * item_table[targets]).sum(-1, keepdim=True)
    negative = (states @ item_table[drawn].T).masked_fill(drawn[None, :] == targets[:, None], -torch.inf)
    logits = torch.cat([positive, negative], dim=1)
    return functional.cross_entropy(logits, torch.zeros_like(targets))


def next_item_loss(
    kind: str, outputs: torch.Tensor, embedding: torch.nn.Embedding, batch: dict[str, torch.Tensor], negatives: int
) -> torch.Tensor:
    """The `next_item_loss` setting of the models on the SASRec backbone: `bce` (the code's),
    `ce` (full softmax) or `sampled_ce` (`ce_negatives` sampled items)."""
    if kind == "bce":
        return next_item_bce(outputs, embedding, batch)
    if kind == "ce":
        return next_item_ce(outputs, embedding.weight, batch)
    if kind == "sampled_ce":
        return next_item_ce(outputs, embedding.weight, batch, negatives)
    raise ValueError(f"next_item_loss must be one of {NEXT_ITEM_LOSSES}, got {kind!r}")


def flattened_info_nce(view_outputs: torch.Tensor, temperature: float) -> torch.Tensor:
    """[2b, L, f] (view one's rows first) -> InfoNCE between the two views flattened to L*f features."""
    flat = view_outputs.reshape(view_outputs.shape[0], -1)
    one, two = flat.chunk(2)
    return info_nce(one, two, temperature)


def intent_info_nce(view_outputs: torch.Tensor, intents: torch.Tensor, temperature: float) -> torch.Tensor:
    """[2b, L, d] views (mean-pooled here) against [b, d] intents, averaged over the two views."""
    one, two = view_outputs.mean(dim=1).chunk(2)
    return (info_nce(one, intents, temperature) + info_nce(two, intents, temperature)) / 2

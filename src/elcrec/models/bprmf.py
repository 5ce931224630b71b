"""BPR-MF (Rendle et al., 2009): user and item embeddings, the pairwise BPR loss with one sampled
negative per positive; order is ignored. Trained on the training interactions s_1..s_{n-2} of
each user (the items the sequential models learn from, inputs and targets; s_{n-1} and s_n are
validation and test): a batch of users contributes every one of their training items, each paired
with a negative that is not in the user's sequence. Scores are u . E^T over every vocabulary row."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from elcrec.models.base import Batch, RecommenderModel
from elcrec.models.registry import register


def training_pairs(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch row, positive, negative) for every training interaction s_1..s_{n-2} of the batch's users.

    The targets s_2..s_{n-2} come with their own sampled negatives; s_1, the first input item, is
    paired with the negative of the first position (a uniform draw outside the user's sequence too).
    """
    inputs, targets, negatives = batch["input"], batch["target"], batch["negative"]
    is_target = targets > 0
    rows = is_target.nonzero()[:, 0]
    has_items = is_target.any(dim=1)
    first = (inputs.shape[1] - is_target.sum(dim=1)).clamp(max=inputs.shape[1] - 1)[:, None]
    first_rows = has_items.nonzero()[:, 0]
    return (
        torch.cat([rows, first_rows]),
        torch.cat([targets[is_target], inputs.gather(1, first)[has_items, 0]]),
        torch.cat([negatives[is_target], negatives.gather(1, first)[has_items, 0]]),
    )


@register
class BPRMF(RecommenderModel):
    name = "bprmf"
    needs_users = True
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # official default, and the shared protocol's 64 dimensions
        "lr": 0.01,  # official: Adam, learning rate 0.01
        "l2": 1e-5,  # official: L2 on the batch's user, positive and negative embeddings
        "epochs": 500,  # official maximum; early stopping (patience 40 on valid NDCG@20) as for every model
        # official batches are 1024 (user, positive, negative) triples; ours are users with all their
        # training items: 128 users hold about 760 triples on the Amazon sets (6 training items each)
        "batch_size": 128,
    }

    def __init__(self, vocab_size: int, settings: dict, n_users: int) -> None:
        super().__init__()
        self.user_embedding = nn.Embedding(n_users, settings["hidden_size"])
        self.item_embedding = nn.Embedding(vocab_size, settings["hidden_size"])
        for embedding in (self.user_embedding, self.item_embedding):
            nn.init.normal_(embedding.weight, std=settings["init_std"])
        self.l2 = settings["l2"]

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        rows, positive_items, negative_items = training_pairs(batch)
        users = self.user_embedding(batch["users"][rows])
        positives = self.item_embedding(positive_items)
        negatives = self.item_embedding(negative_items)
        margin = (users * positives).sum(-1) - (users * negatives).sum(-1)
        bpr = -functional.logsigmoid(margin).mean()
        l2 = self.l2 * (users.pow(2).sum(-1) + positives.pow(2).sum(-1) + negatives.pow(2).sum(-1)).mean()
        return {"bpr": bpr, "l2": l2, "total": bpr + l2}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.user_embedding(batch["users"]) @ self.item_embedding.weight.T

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.user_embedding(batch["users"]), None

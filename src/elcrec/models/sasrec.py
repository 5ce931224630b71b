"""SASRec as the reference trains it: the backbone and a binary cross-entropy with one sampled
negative per position, averaged over non-padding positions (PROTOCOL.md "Next-item loss")."""

from __future__ import annotations

import torch

from elcrec.models.base import Batch, RecommenderModel, backbone_from
from elcrec.models.registry import register

LOG_EPSILON = 1e-24  # the reference's -log(sigmoid(x) + 1e-24)


def next_item_bce(outputs: torch.Tensor, embedding: torch.nn.Embedding, batch: Batch) -> torch.Tensor:
    """outputs [b, L, d]; batch["target"], batch["negative"] [b, L] (0 at padding)."""
    positive_logits = (outputs * embedding(batch["target"])).sum(-1)
    negative_logits = (outputs * embedding(batch["negative"])).sum(-1)
    is_target = (batch["target"] > 0).to(outputs.dtype)
    losses = -torch.log(torch.sigmoid(positive_logits) + LOG_EPSILON) - torch.log(
        1 - torch.sigmoid(negative_logits) + LOG_EPSILON
    )
    return (losses * is_target).sum() / is_target.sum().clamp(min=1)


@register
class SASRec(RecommenderModel):
    name = "sasrec"

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        self.backbone = backbone_from(vocab_size, settings)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        next_item = next_item_bce(self.backbone(batch["input"]), self.backbone.item_embedding, batch)
        return {"next_item": next_item, "total": next_item}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.backbone.last_state(batch["input"]))

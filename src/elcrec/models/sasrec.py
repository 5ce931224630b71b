"""SASRec as the reference trains it: the backbone and a binary cross-entropy with one sampled
negative per position, averaged over non-padding positions (PROTOCOL.md "Next-item loss")."""

from __future__ import annotations

import torch

from elcrec.models.base import Batch, RecommenderModel, backbone_from
from elcrec.models.losses import next_item_bce
from elcrec.models.registry import register


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

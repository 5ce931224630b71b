"""CL4SRec as run inside the ICLRec/ELCRec code base (PROTOCOL.md "CL4SRec"): SASRec's loss plus
an instance contrastive loss between two augmented views, each flattened over all positions."""

from __future__ import annotations

import torch

from elcrec.models.base import (
    NEXT_ITEM_CHOICES,
    NEXT_ITEM_DEFAULTS,
    Batch,
    NextItemObjective,
    RecommenderModel,
    backbone_from,
)
from elcrec.models.losses import flattened_info_nce
from elcrec.models.registry import register


@register
class CL4SRec(RecommenderModel):
    name = "cl4srec"
    choices = NEXT_ITEM_CHOICES
    defaults = NEXT_ITEM_DEFAULTS | {"instance_weight": 0.1, "temperature": 1.0}
    needs_views = True

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        self.backbone = backbone_from(vocab_size, settings)
        self.instance_weight = settings["instance_weight"]
        self.temperature = settings["temperature"]
        self.next_item = NextItemObjective(settings)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        # One encoder pass over the main rows and both views: rows are independent (own dropout),
        # so this is the reference's two passes in one.
        size = batch["input"].shape[0]
        outputs = self.backbone(torch.cat([batch["input"], batch["views"]]))
        next_item = self.next_item(outputs[:size], self.backbone.item_embedding, batch)
        instance = flattened_info_nce(outputs[size:], self.temperature)
        return {"next_item": next_item, "instance_cl": instance, "total": next_item + self.instance_weight * instance}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.backbone.last_state(batch["input"]))

"""CL4SRec as run inside the ICLRec/ELCRec code base (PROTOCOL.md "CL4SRec"): SASRec's loss plus
an instance contrastive loss between two augmented views, each flattened over all positions.
`architecture: sslrec`: as HKUDS/SSLRec's cl4srec.py computes it (docs/OFFICIAL.md): its Transformer
(models/sslrec.py), a softmax cross-entropy of the last position over item rows 0..items (the padding
row a class, the mask row not) and the InfoNCE between the two views' last-position states; variant
`sslrec` adds its examples and views (data/batches.py `seq-aug`, `sslrec_views`)."""

from __future__ import annotations

import torch
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.models.base import (
    NEXT_ITEM_CHOICES,
    NEXT_ITEM_DEFAULTS,
    Batch,
    NextItemObjective,
    RecommenderModel,
    backbone_from,
)
from elcrec.models.losses import flattened_info_nce, info_nce
from elcrec.models.registry import register
from elcrec.models.sslrec import SSLRecEncoder

ARCHITECTURES = ("iclrec", "sslrec")  # the ICLRec code base's CL4SRec (Table 1's column), SSLRec's


@register
class CL4SRec(RecommenderModel):
    name = "cl4srec"
    choices = NEXT_ITEM_CHOICES | {"architecture": ARCHITECTURES}
    defaults = NEXT_ITEM_DEFAULTS | {"instance_weight": 0.1, "temperature": 1.0, "architecture": "iclrec"}
    needs_views = True

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        self.sslrec = settings["architecture"] == "sslrec"
        if self.sslrec and settings["next_item_loss"] != "bce":
            raise ElcrecError(
                "cl4srec: architecture sslrec has its own next-item loss (SSLRec's cross-entropy at the last "
                f"position); next_item_loss {settings['next_item_loss']!r} applies to architecture iclrec only"
            )
        self.backbone = SSLRecEncoder(vocab_size, settings) if self.sslrec else backbone_from(vocab_size, settings)
        self.instance_weight = settings["instance_weight"]
        self.temperature = settings["temperature"]
        self.next_item = NextItemObjective(settings)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.sslrec:
            return self.sslrec_loss(batch)
        # One encoder pass over the main rows and both views: rows are independent (own dropout),
        # so this is the reference's two passes in one.
        size = batch["input"].shape[0]
        outputs = self.backbone(torch.cat([batch["input"], batch["views"]]))
        next_item = self.next_item(outputs[:size], self.backbone.item_embedding, batch)
        instance = flattened_info_nce(outputs[size:], self.temperature)
        return {"next_item": next_item, "instance_cl": instance, "total": next_item + self.instance_weight * instance}

    def sslrec_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """cl4srec.py cal_loss: each row's target is its last position's (one example a row)."""
        size = batch["input"].shape[0]
        states = self.backbone(torch.cat([batch["input"], batch["views"]]))[:, -1]
        logits = states[:size] @ self.backbone.item_embedding.weight[:-1].T  # rows 0..items: not the mask id
        next_item = functional.cross_entropy(logits, batch["target"][:, -1])
        instance = info_nce(*states[size:].chunk(2), self.temperature)
        return {"next_item": next_item, "instance_cl": instance, "total": next_item + self.instance_weight * instance}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.backbone.last_state(batch["input"]))

"""SASRec as the reference trains it: the backbone and a binary cross-entropy with one sampled
negative per position, averaged over non-padding positions (PROTOCOL.md "Next-item loss");
the loss and scoring are base.NextItemRecommender's, shared with S3-Rec's and DSSRec's fine-tuning.
`architecture: kang205` swaps in the encoder of the code the paper's Table 12 names (models/kang205.py)."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from elcrec.models.base import NEXT_ITEM_CHOICES, NEXT_ITEM_DEFAULTS, NextItemRecommender
from elcrec.models.kang205 import Kang205Encoder
from elcrec.models.registry import register

ARCHITECTURES = ("iclrec", "kang205")  # the ICLRec code base's encoder (the backbone), kang205/SASRec's


@register
class SASRec(NextItemRecommender):
    name = "sasrec"
    defaults: ClassVar[dict] = NEXT_ITEM_DEFAULTS | {"architecture": "iclrec"}
    choices: ClassVar[dict[str, tuple]] = NEXT_ITEM_CHOICES | {"architecture": ARCHITECTURES}

    def encoder(self, vocab_size: int, settings: dict) -> nn.Module:
        if settings["architecture"] == "kang205":
            return Kang205Encoder(vocab_size, settings)
        return super().encoder(vocab_size, settings)

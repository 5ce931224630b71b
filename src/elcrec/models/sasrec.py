"""SASRec as the reference trains it: the backbone and a binary cross-entropy with one sampled
negative per position, averaged over non-padding positions (PROTOCOL.md "Next-item loss");
the loss and scoring are base.NextItemRecommender's, shared with S3-Rec's and DSSRec's fine-tuning."""

from __future__ import annotations

from elcrec.models.base import NextItemRecommender
from elcrec.models.registry import register


@register
class SASRec(NextItemRecommender):
    name = "sasrec"

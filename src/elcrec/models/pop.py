"""Most-popular: every user gets the same scores, the items' counts in the training interactions
(s_1..s_{n-2} of every user). The floor any personalised model should clear by a margin."""

from __future__ import annotations

from typing import ClassVar

import torch

from elcrec.models.base import Batch, EpochContext, RecommenderModel
from elcrec.models.registry import register


@register
class Pop(RecommenderModel):
    name = "pop"
    # nothing to learn: one pass counts the items; validation and test then run as for any model
    defaults: ClassVar[dict] = {"epochs": 1}

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(vocab_size))

    def on_epoch_start(self, context: EpochContext) -> None:
        if context.epoch == 0:
            items = torch.from_numpy(context.train_sequences.items)  # uncut: every training interaction
            counts = torch.bincount(items, minlength=len(self.counts)).to(self.counts)
            self.counts.copy_(counts)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"total": torch.zeros((), device=self.counts.device)}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.counts.expand(len(batch["input"]), -1).clone()

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.counts.expand(len(batch["input"]), -1)[:, :0], None  # no user embedding

"""The interface every model implements; the training loop knows nothing model-specific.

A model is built as `Model(vocab_size, settings)`. `loss(batch)` returns named loss tensors,
"total" among them (the others are logged per epoch); `score(batch)` returns [batch, vocab]
scores for full-ranking evaluation. `on_epoch_start(context)` is an optional hook (e.g. the
k-means of ICLRec and of ELCRec's initialisation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Batch = dict[str, torch.Tensor]


class RecommenderModel(nn.Module):
    name: str = ""

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def score(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def on_epoch_start(self, context: Any) -> None:
        """Called by the training loop before every epoch; nothing by default."""

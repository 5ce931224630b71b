"""BERT4Rec (Sun et al., 2019): a bidirectional Transformer trained with the cloze objective.

Each epoch, every user's training interactions s_1..s_{n-2} (the last max_len) get a fresh random
mask, as the official data generator does once per `dupe_factor` copy: round(m * mask_prob)
positions (at least one, at most `max_predictions`) are replaced by the mask token (always; the
official code sets BERT's 80/10/10 rule to 100% [MASK]) and predicted with a full softmax over
the vocabulary. The encoder is the shared backbone (post-LN blocks, GELU, learned positions) with
attention in both directions; the output head is the official dense -> GELU -> LayerNorm, then
the tied item embeddings plus an output bias. To score, the mask token is appended after the
input (the oldest item drops out of a full window) and its output ranks the items.

The mask token is the vocabulary's last row (max item id + 1), which no sequence holds.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from elcrec.models.backbone import LAYER_NORM_EPS
from elcrec.models.base import Batch, RecommenderModel, backbone_from, training_items
from elcrec.models.registry import register


def cloze_mask(items: torch.Tensor, probability: float, max_predictions: int) -> torch.Tensor:
    """Right-aligned rows [b, L] -> bool [b, L]: the positions to mask, round(m * probability)
    of each row's m items chosen uniformly (at least one, at most `max_predictions`)."""
    is_item = items > 0
    lengths = is_item.sum(dim=1)
    count = torch.round(lengths.double() * probability).long().clamp(min=1, max=max_predictions)
    keys = torch.rand(items.shape, device=items.device).masked_fill(~is_item, 2.0)
    rank = keys.argsort(dim=1).argsort(dim=1)  # random order of each row's item positions
    return (rank < count[:, None]) & is_item


@register
class BERT4Rec(RecommenderModel):
    name = "bert4rec"
    defaults: ClassVar[dict] = {
        # official Beauty configuration: 64 dims, 2 layers, 2 heads, FFN 256, dropout 0.5 (hidden)
        # and 0.2 (attention), mask probability 0.6, up to 30 masked items, Adam lr 1e-4, batch 256
        "layers": 2,
        "dropout": 0.5,
        "attention_dropout": 0.2,
        "mask_prob": 0.6,
        "max_predictions": 30,
        "lr": 1e-4,
        # official: 400,000 steps (about 4,600 epochs of Beauty) with linear decay and decoupled
        # weight decay 0.01; ours: constant-rate Adam, early stopping on valid NDCG@20 as every model
        "epochs": 1000,
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        self.backbone = backbone_from(vocab_size, settings, causal=False)
        size = settings["hidden_size"]
        self.mask_id = vocab_size - 1
        self.mask_prob, self.max_predictions = settings["mask_prob"], settings["max_predictions"]
        self.max_len = settings["max_len"]
        self.transform = nn.Linear(size, size)
        self.transform_norm = nn.LayerNorm(size, eps=LAYER_NORM_EPS)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        self.transform.weight.data.normal_(0, settings["init_std"])
        self.transform.bias.data.zero_()

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """[n, d] encoder outputs -> [n, vocab]."""
        hidden = self.transform_norm(functional.gelu(self.transform(states), approximate="none"))
        return self.backbone.item_scores(hidden) + self.output_bias

    def masked_input(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(encoder input with the mask token at the masked positions, the mask, the hidden items)."""
        items = training_items(batch)[:, -self.max_len :]
        masked = cloze_mask(items, self.mask_prob, self.max_predictions)
        return torch.where(masked, torch.full_like(items, self.mask_id), items), masked, items[masked]

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        inputs, masked, labels = self.masked_input(batch)
        cloze = functional.cross_entropy(self.logits(self.backbone(inputs)[masked]), labels)
        return {"cloze": cloze, "total": cloze}

    def with_mask_token(self, inputs: torch.Tensor) -> torch.Tensor:
        mask_column = torch.full_like(inputs[:, :1], self.mask_id)
        return torch.cat([inputs, mask_column], dim=1)[:, -self.max_len :]

    def score(self, batch: Batch) -> torch.Tensor:
        return self.logits(self.backbone.last_state(self.with_mask_token(batch["input"])))

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.backbone.last_state(self.with_mask_token(batch["input"])), None

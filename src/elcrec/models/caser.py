"""Caser (Tang and Wang, 2018) as its official code runs: the last L item embeddings as an L x d
"image", vertical filters (L x 1, no activation) and horizontal filters (h x d for h = 1..L, ReLU,
max-pooled over time), dropout, a ReLU fully connected layer, concatenated with the user
embedding; each item scores as W2[item] . x + b2[item]. Trained with BCE on sliding-window
instances: L previous items predict the next T, against negatives sampled outside the user's
sequence.

Windows follow the official `_sliding_window`: over a user's training interactions s_1..s_{n-2},
all of them (the batch's uncut "whole", interactions.py:209-219; not only the last max_len + 1),
every full window of L+T items, or, for a sequence shorter than L+T, the one window of its last
items padded in front. They are built for a whole batch of users at once, as tensors (unfold).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from elcrec.models.base import Batch, RecommenderModel, training_items
from elcrec.models.registry import register


def sliding_windows(items: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-aligned rows [b, W >= size] -> (row of each window [w], window start columns [w]).

    A row with at least `size` items gives every window that lies inside its items; a shorter row
    gives its last window only (padding in front), as the official code.
    """
    width = items.shape[1]
    lengths = (items > 0).sum(dim=1)
    starts = torch.arange(width - size + 1, device=items.device)
    inside = starts[None, :] >= (width - lengths)[:, None]
    last_only = (lengths < size)[:, None] & (starts[None, :] == width - size)
    rows, columns = (inside | last_only).nonzero(as_tuple=True)
    return rows, columns


@register
class Caser(RecommenderModel):
    name = "caser"
    needs_users = True
    needs_whole = True
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # the shared protocol's 64 dimensions (official d = 50)
        "window": 5,  # official L
        "targets": 3,  # official T
        "vertical_filters": 4,  # official nv
        "horizontal_filters": 16,  # official nh (per height h = 1..L)
        "dropout": 0.5,  # official
        "lr": 1e-3,  # official
        "weight_decay": 1e-6,  # official L2 (Adam weight decay)
        "epochs": 50,  # official n_iter; early stopping as for every model
        # official batches are 512 windows; ours are 512 users, each with its windows (on the
        # Amazon sets most users have fewer than L + T training items, hence one window)
        "batch_size": 512,
    }

    def __init__(self, vocab_size: int, settings: dict, n_users: int) -> None:
        super().__init__()
        size, window = settings["hidden_size"], settings["window"]
        self.window, self.targets = window, settings["targets"]
        self.user_embedding = nn.Embedding(n_users, size)
        self.item_embedding = nn.Embedding(vocab_size, size)
        self.vertical = nn.Conv2d(1, settings["vertical_filters"], (window, 1))
        self.horizontal = nn.ModuleList(
            nn.Conv2d(1, settings["horizontal_filters"], (height, size)) for height in range(1, window + 1)
        )
        features = settings["vertical_filters"] * size + settings["horizontal_filters"] * window
        self.fully_connected = nn.Linear(features, size)
        self.dropout = nn.Dropout(settings["dropout"])
        self.output_weights = nn.Embedding(vocab_size, 2 * size)
        self.output_bias = nn.Embedding(vocab_size, 1)
        # the official initialisation
        for embedding in (self.user_embedding, self.item_embedding, self.output_weights):
            embedding.weight.data.normal_(0, 1.0 / embedding.embedding_dim)
        self.output_bias.weight.data.zero_()

    def represent(self, recent: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """recent [b, L] item ids (0 = padding), users [b] -> x [b, 2d]."""
        image = self.item_embedding(recent).unsqueeze(1)  # [b, 1, L, d]
        vertical = self.vertical(image).flatten(1)
        horizontal = []
        for conv in self.horizontal:
            activations = functional.relu(conv(image).squeeze(3))  # [b, nh, L - h + 1]
            horizontal.append(activations.max(dim=2).values)
        hidden = self.dropout(torch.cat([vertical, *horizontal], dim=1))
        return torch.cat([functional.relu(self.fully_connected(hidden)), self.user_embedding(users)], dim=1)

    def item_logits(self, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """x [w, 2d], items [w, k] -> [w, k]."""
        return (self.output_weights(items) * x[:, None, :]).sum(-1) + self.output_bias(items)[..., 0]

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        size = self.window + self.targets
        # the sampled negative of target t sits under item t + 1; none under s_1
        negatives = functional.pad(batch.get("whole_negative", batch["negative"]), (1, 0))
        items = training_items(batch)
        if items.shape[1] < size:  # narrower than one window: pad in front
            items, negatives = (functional.pad(rows, (size - rows.shape[1], 0)) for rows in (items, negatives))
        rows, starts = sliding_windows(items, size)
        columns = starts[:, None] + torch.arange(size, device=items.device)[None, :]
        windows = items[rows[:, None], columns]
        window_negatives = negatives[rows[:, None], columns[:, self.window :]]
        x = self.represent(windows[:, : self.window], batch["users"][rows])
        positive_logits = self.item_logits(x, windows[:, self.window :])
        negative_logits = self.item_logits(x, window_negatives)
        is_target = windows[:, self.window :] > 0
        positive = -functional.logsigmoid(positive_logits)[is_target].mean()
        negative = -functional.logsigmoid(-negative_logits)[window_negatives > 0].mean()
        return {"positive": positive, "negative": negative, "total": positive + negative}

    def last_items(self, inputs: torch.Tensor) -> torch.Tensor:
        """The last L columns of left-padded inputs (padded in front when they are narrower)."""
        return functional.pad(inputs, (max(self.window - inputs.shape[1], 0), 0))[:, -self.window :]

    def score(self, batch: Batch) -> torch.Tensor:
        x = self.represent(self.last_items(batch["input"]), batch["users"])
        return x @ self.output_weights.weight.T + self.output_bias.weight[:, 0]

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.represent(self.last_items(batch["input"]), batch["users"]), None

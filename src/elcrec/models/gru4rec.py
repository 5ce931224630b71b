"""GRU4Rec (Hidasi et al., 2016): item embedding -> dropout -> one GRU layer; the hidden state at
each position scores the next item against separate output item weights and biases, as the
official code's `Wy`/`By`. The official loss is BPR over sampled negatives (mini-batch sampling:
the other targets of the batch, i.e. popularity-proportional); a full-softmax cross-entropy over
every item (RecBole's choice) is the named option `loss: ce`.

The training loop's inputs are left-padded; the GRU runs over each sequence's items only (packed),
so padding never touches the hidden state.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from elcrec import ElcrecError
from elcrec.models.base import Batch, RecommenderModel
from elcrec.models.registry import register

LOSSES = ("bpr", "ce")


def left_aligned(inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Right-aligned rows (left padding) -> the same items from column 0 on (right padding)."""
    width = inputs.shape[1]
    columns = (torch.arange(width, device=inputs.device)[None, :] + (width - lengths)[:, None]) % width
    return inputs.gather(1, columns)


def right_aligned(states: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """[b, t <= width, d] left-aligned outputs -> [b, width, d] right-aligned (zeros in front)."""
    if states.shape[1] < width:
        states = functional.pad(states, (0, 0, 0, width - states.shape[1]))
    columns = (torch.arange(width, device=states.device)[None, :] - (width - lengths)[:, None]) % width
    return states.gather(1, columns[:, :, None].expand(-1, -1, states.shape[2]))


def bpr_sampled(outputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, weights, bias) -> torch.Tensor:
    """outputs [p, d] for p positions, targets [p], negatives [n] shared by every position:
    mean over positions and negatives of -log sigmoid(r_target - r_negative)."""
    positive = (outputs * weights(targets)).sum(-1) + bias(targets)[:, 0]
    negative = outputs @ weights(negatives).T + bias(negatives)[:, 0][None, :]
    return -functional.logsigmoid(positive[:, None] - negative).mean()


@register
class GRU4Rec(RecommenderModel):
    name = "gru4rec"
    choices: ClassVar[dict] = {"loss": LOSSES}
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # the shared protocol's 64 dimensions (official 100)
        "dropout": 0.3,  # official dropout on the embedded input
        "loss": "bpr",  # official; "ce" = full-softmax cross-entropy over all items (RecBole)
        # official mini-batch sampling: the targets of other positions in the batch are the
        # negatives; ours draws this many of them per batch (official batches are 32-50 sessions)
        "negatives": 128,
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        if settings["loss"] not in LOSSES:
            raise ElcrecError(f"gru4rec: loss must be one of {LOSSES}, got {settings['loss']!r}")
        size = settings["hidden_size"]
        self.loss_name = settings["loss"]
        self.negatives = settings["negatives"]
        self.item_embedding = nn.Embedding(vocab_size, size, padding_idx=0)
        self.dropout = nn.Dropout(settings["dropout"])
        self.gru = nn.GRU(size, size, batch_first=True)
        self.output_weights = nn.Embedding(vocab_size, size)
        self.output_bias = nn.Embedding(vocab_size, 1)
        for embedding in (self.item_embedding, self.output_weights):
            nn.init.normal_(embedding.weight, std=settings["init_std"])
        nn.init.zeros_(self.output_bias.weight)

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[b, L] left-padded ids -> (states [b, L, d] right-aligned, zero at padding; last [b, d])."""
        lengths = (inputs > 0).sum(dim=1)
        has_items = lengths > 0
        states = torch.zeros(*inputs.shape, self.gru.hidden_size, device=inputs.device)
        last = torch.zeros(len(inputs), self.gru.hidden_size, device=inputs.device)
        if bool(has_items.any()):
            kept, kept_lengths = inputs[has_items], lengths[has_items]
            embedded = self.dropout(self.item_embedding(left_aligned(kept, kept_lengths)))
            packed = pack_padded_sequence(embedded, kept_lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, hidden = self.gru(packed)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True)
            states[has_items] = right_aligned(outputs, kept_lengths, inputs.shape[1]).to(states.dtype)
            last[has_items] = hidden[0].to(last.dtype)
        return states, last

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        states, _ = self.encode(batch["input"])
        is_target = batch["target"] > 0
        outputs, targets = states[is_target], batch["target"][is_target]
        if self.loss_name == "ce":
            logits = outputs @ self.output_weights.weight.T + self.output_bias.weight[:, 0]
            value = functional.cross_entropy(logits, targets)
        else:
            picks = torch.randint(0, len(targets), (min(self.negatives, len(targets)),), device=targets.device)
            value = bpr_sampled(outputs, targets, targets[picks], self.output_weights, self.output_bias)
        return {self.loss_name: value, "total": value}

    def score(self, batch: Batch) -> torch.Tensor:
        _, last = self.encode(batch["input"])
        return last @ self.output_weights.weight.T + self.output_bias.weight[:, 0]

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encode(batch["input"])[1], None

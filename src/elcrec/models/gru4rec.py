"""GRU4Rec as the code the paper's Table 12 names runs it (slientGe/Sequential_Recommendation_Tensorflow,
TF1): a TF1 GRU cell over the last `window` items, scored by its output; trained on windows
(`batch_unit: windows`) with `negatives` each, BPR summed over a batch, gradients clipped to
`clip_norm`; `loss: ce` a full softmax (beyond the code). Differences: docs/OFFICIAL.md."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.models.backbone import glorot_uniform_
from elcrec.models.base import Batch, RecommenderModel
from elcrec.models.registry import register

LOSSES = ("bpr", "ce")


class TFGRUCell(nn.Module):
    """TensorFlow 1's `GRUCell` (tf.nn.rnn_cell, gates then candidate): [r, u] = sigmoid([x, h] G + g),
    c = tanh([x, r * h] C + c_b), h' = u * h + (1 - u) * c; the reset gate multiplies the state before
    the candidate's product (PyTorch's nn.GRU multiplies the product). Glorot kernels, gate bias 1,
    candidate bias 0, as TF 1 initialises them."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.gate_kernel = nn.Parameter(torch.empty(input_size + hidden_size, 2 * hidden_size))
        self.gate_bias = nn.Parameter(torch.ones(2 * hidden_size))
        self.candidate_kernel = nn.Parameter(torch.empty(input_size + hidden_size, hidden_size))
        self.candidate_bias = nn.Parameter(torch.zeros(hidden_size))
        glorot_uniform_(self.gate_kernel, input_size + hidden_size, 2 * hidden_size)
        glorot_uniform_(self.candidate_kernel, input_size + hidden_size, hidden_size)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """[b, t, e] -> the state after every step [b, t, h], from a zero state."""
        state = inputs.new_zeros(len(inputs), self.hidden_size)
        outputs = []
        for step in range(inputs.shape[1]):
            x = inputs[:, step]
            gates = torch.sigmoid(torch.cat([x, state], 1) @ self.gate_kernel + self.gate_bias)
            reset, update = gates.chunk(2, dim=1)
            candidate = torch.tanh(torch.cat([x, reset * state], 1) @ self.candidate_kernel + self.candidate_bias)
            state = update * state + (1 - update) * candidate
            outputs.append(state)
        return torch.stack(outputs, 1)


@register
class GRU4Rec(RecommenderModel):
    name = "gru4rec"
    choices: ClassVar[dict] = {"loss": LOSSES}
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # the shared protocol's 64 dimensions (official emb_size 50)
        "window": 5,  # official len_Seq: the items a window holds
        "dropout": 0.3,  # official keep_prob 0.7, on the GRU's output
        "loss": "bpr",  # official; "ce" = full-softmax cross-entropy over all items (beyond the code)
        "negatives": 10,  # official neg_sample: items outside the user's items, per window
        "batch_unit": "windows",
        "batch_size": 500,  # windows a step (official)
        "clip_norm": 5.0,  # official tf.clip_by_global_norm
        "epochs": 30,  # official num_epochs; early stopping as for every model
        "lr": 0.001,
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        if settings["loss"] not in LOSSES:
            raise ElcrecError(f"gru4rec: loss must be one of {LOSSES}, got {settings['loss']!r}")
        size = settings["hidden_size"]
        self.loss_name, self.window = settings["loss"], settings["window"]
        self.item_embedding = nn.Embedding(vocab_size, size, padding_idx=0)
        self.gru = TFGRUCell(size, size)
        self.dropout = nn.Dropout(settings["dropout"])
        self.output_weights = nn.Embedding(vocab_size, size)
        self.output_bias = nn.Embedding(vocab_size, 1)
        with torch.no_grad():
            for table in (self.item_embedding, self.output_weights, self.output_bias):
                glorot_uniform_(table.weight, *table.weight.shape)
            self.item_embedding.weight[0].zero_()  # padding: the official loader has no short windows

    def last_items(self, inputs: torch.Tensor) -> torch.Tensor:
        """[b, L] left-padded ids -> their last `window` columns (padding in front when L is narrower)."""
        return functional.pad(inputs, (max(self.window - inputs.shape[1], 0), 0))[:, -self.window :]

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """[b, L] left-padded ids -> the GRU's dropped-out output after the last item [b, d]."""
        return self.dropout(self.gru(self.item_embedding(self.last_items(inputs)))[:, -1])

    def logits(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """states [b, d], items [b, k] -> [b, k]."""
        return (states[:, None, :] * self.output_weights(items)).sum(-1) + self.output_bias(items)[..., 0]

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        states, targets = self.encode(batch["input"]), batch["target"][:, -1]
        if self.loss_name == "ce":
            all_logits = states @ self.output_weights.weight.T + self.output_bias.weight[:, 0]
            value = functional.cross_entropy(all_logits, targets)
        else:
            margins = self.logits(states, targets[:, None]) - self.logits(states, batch["negatives"])
            value = -functional.logsigmoid(margins).mean(1).sum()  # a window's mean, summed as the official
        return {self.loss_name: value, "total": value}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.encode(batch["input"]) @ self.output_weights.weight.T + self.output_bias.weight[:, 0]

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encode(batch["input"]), None

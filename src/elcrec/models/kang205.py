"""SASRec's encoder as kang205/SASRec (TensorFlow 1; the code the paper's Table 12 names) builds it
(model.py, modules.py; docs/OFFICIAL.md), for SASRec's variant `kang205`: item embeddings scaled by
sqrt(d) plus learned positions; per block, attention whose queries are LayerNorm(x) and keys and values
x itself, no output projection, the residual added to the normalised queries; a ReLU feed-forward of
width d on LayerNorm(x), its residual to that; padding zeroed after each block; a final LayerNorm.
LayerNorm eps 1e-8; glorot-uniform weights, zero biases (TF 1's defaults); row 0 of the item table zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from elcrec.models.backbone import Backbone, Dropout, ItemEncoder, glorot_uniform_, split_heads

EPS = 1e-8  # modules.py normalize


class Kang205Block(nn.Module):
    def __init__(self, size: int, heads: int, dropout: float) -> None:
        super().__init__()
        if size % heads:
            raise ValueError(f"hidden_size {size} is not a multiple of heads {heads}")
        self.heads = heads
        self.attention_norm = nn.LayerNorm(size, eps=EPS)
        self.query, self.key, self.value = (nn.Linear(size, size) for _ in range(3))
        self.attention_dropout = Dropout(dropout)
        self.feed_forward_norm = nn.LayerNorm(size, eps=EPS)
        self.expand, self.contract = nn.Linear(size, size), nn.Linear(size, size)
        self.dropout = Dropout(dropout)

    def forward(self, states: torch.Tensor, additive_mask: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        queries = self.attention_norm(states)
        query = split_heads(self.query(queries), self.heads)
        key, value = split_heads(self.key(states), self.heads), split_heads(self.value(states), self.heads)
        logits = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1]) + additive_mask
        # (the official query mask zeroes padding rows only, whose outputs no real position reads: left out)
        context = (self.attention_dropout(torch.softmax(logits, dim=-1)) @ value).transpose(1, 2).reshape(states.shape)
        states = context + queries
        inputs = self.feed_forward_norm(states)
        hidden = self.dropout(self.contract(self.dropout(functional.relu(self.expand(inputs)))))
        return (hidden + inputs) * padding


class Kang205Encoder(ItemEncoder):
    """input ids [batch, max_len] (left-padded with 0) -> outputs [batch, max_len, hidden]."""

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        size = settings["hidden_size"]
        self.item_embedding = nn.Embedding(vocab_size, size, padding_idx=0)
        self.position_embedding = nn.Embedding(settings["max_len"], size)
        self.embedding_dropout = Dropout(settings["dropout"])
        self.blocks = nn.ModuleList(
            Kang205Block(size, settings["heads"], settings["dropout"]) for _ in range(settings["layers"])
        )
        self.final_norm = nn.LayerNorm(size, eps=EPS)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    glorot_uniform_(module.weight, *module.weight.shape)
                if isinstance(module, nn.Linear):
                    module.bias.zero_()
            self.item_embedding.weight[0].zero_()  # model.py's zero_pad: row 0 is a constant 0

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        size = self.item_embedding.embedding_dim
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        padding = (input_ids > 0).unsqueeze(-1).to(self.item_embedding.weight.dtype)
        states = self.item_embedding(input_ids) * size**0.5 + self.position_embedding(positions)[None]
        states = self.embedding_dropout(states) * padding
        additive_mask = Backbone.additive_mask(input_ids).to(states.dtype)  # causal, keys not padding
        for block in self.blocks:
            states = block(states, additive_mask, padding)
        return self.final_norm(states)

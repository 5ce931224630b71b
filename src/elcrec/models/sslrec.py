"""The Transformer of HKUDS/SSLRec (models/model_utils.py; the code the paper's Table 12 names for
CL4SRec), for CL4SRec's `architecture: sslrec` (docs/OFFICIAL.md): item plus learned position
embeddings with a dropout of 0.1 (SSLRec's fixed default), no LayerNorm on them; per layer,
pre-LN residual sublayers x + Dropout(f(LayerNorm(x))) for attention (a key-padding mask, no causal
mask, an output projection) and a GELU feed-forward, then a dropout of the layer's output; no final
LayerNorm. LayerNorm eps 1e-5; every Linear and Embedding weight N(0, 0.02), the padding row too
(it is looked up, with no gradient through the lookup); biases 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from elcrec.models.backbone import Dropout, ItemEncoder, split_heads

EMBEDDING_DROPOUT = 0.1  # model_utils.py TransformerEmbedding(dropout=0.1), never passed by cl4srec.py
MASKED = -1e9  # model_utils.py MultiHeadAttention: masked_fill(mask == 0, -1e9)


class SSLRecLayer(nn.Module):
    def __init__(self, size: int, heads: int, inner: int, dropout: float) -> None:
        super().__init__()
        if size % heads:
            raise ValueError(f"hidden_size {size} is not a multiple of heads {heads}")
        self.heads = heads
        self.attention_norm = nn.LayerNorm(size)
        self.query, self.key, self.value, self.output = (nn.Linear(size, size) for _ in range(4))
        self.attention_dropout, self.attention_out_dropout = Dropout(dropout), Dropout(dropout)
        self.feed_forward_norm = nn.LayerNorm(size)
        self.expand, self.contract = nn.Linear(size, inner), nn.Linear(inner, size)
        self.inner_dropout, self.feed_forward_dropout, self.layer_dropout = (Dropout(dropout) for _ in range(3))

    def forward(self, states: torch.Tensor, key_padding: torch.Tensor) -> torch.Tensor:
        normed = self.attention_norm(states)
        query, key, value = (split_heads(layer(normed), self.heads) for layer in (self.query, self.key, self.value))
        logits = (query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])).masked_fill(key_padding, MASKED)
        context = (self.attention_dropout(torch.softmax(logits, dim=-1)) @ value).transpose(1, 2).reshape(states.shape)
        states = states + self.attention_out_dropout(self.output(context))
        hidden = self.contract(self.inner_dropout(functional.gelu(self.expand(self.feed_forward_norm(states)))))
        return self.layer_dropout(states + self.feed_forward_dropout(hidden))


class SSLRecEncoder(ItemEncoder):
    """input ids [batch, max_len] (left-padded with 0) -> outputs [batch, max_len, hidden]."""

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        size = settings["hidden_size"]
        self.item_embedding = nn.Embedding(vocab_size, size, padding_idx=0)
        self.position_embedding = nn.Embedding(settings["max_len"], size)
        self.embedding_dropout = Dropout(EMBEDDING_DROPOUT)
        self.layers = nn.ModuleList(
            SSLRecLayer(size, settings["heads"], settings["inner_size"], settings["dropout"])
            for _ in range(settings["layers"])
        )
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    module.weight.normal_(mean=0.0, std=0.02)  # cl4srec.py _init_weights: row 0 too
                if isinstance(module, nn.Linear):
                    module.bias.zero_()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        states = self.embedding_dropout(self.item_embedding(input_ids) + self.position_embedding(positions)[None])
        key_padding = (input_ids == 0)[:, None, None, :]
        for layer in self.layers:
            states = layer(states, key_padding)
        return states

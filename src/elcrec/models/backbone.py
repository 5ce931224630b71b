"""The SASRec encoder exactly as the authors' code runs it (PROTOCOL.md "Backbone").

Post-LN Transformer blocks, exact (erf) GELU, an additive -10000 attention mask (causal and
key-is-not-padding), LayerNorm eps 1e-12, dropout everywhere, N(0, 0.02) initialisation of every
Linear and Embedding weight (the padding row included). Attention is written out with
matmuls, as in the reference, so that the released checkpoint gives the published metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

MASKED_LOGIT = -10000.0
LAYER_NORM_EPS = 1e-12


@dataclass(frozen=True)
class BackboneSettings:
    hidden_size: int = 64
    layers: int = 2
    heads: int = 2
    inner_size: int = 256
    max_len: int = 50
    dropout: float = 0.5
    attention_dropout: float = 0.5
    init_std: float = 0.02


def glorot_uniform_(tensor: torch.Tensor, fan_in: int, fan_out: int) -> torch.Tensor:
    """TensorFlow 1's default initialiser of `tf.get_variable`: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return nn.init.uniform_(tensor, -bound, bound)


class _ScaleByMask(torch.autograd.Function):
    """x * mask, with the (small-dtype) mask kept for the backward pass instead of a float copy."""

    @staticmethod
    def forward(ctx, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return states * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None


_BIT_SHIFTS: dict[torch.device, torch.Tensor] = {}


def _half_dropout_mask(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """uint8 mask of {0, 2}: one random bit per element, i.e. dropout with p = 0.5 and its 1/(1-p)."""
    count = math.prod(shape)
    shifts = _BIT_SHIFTS.setdefault(device, torch.arange(8, dtype=torch.uint8, device=device))
    random_bytes = torch.randint(0, 256, ((count + 7) // 8, 1), dtype=torch.uint8, device=device)
    bits = ((random_bytes >> shifts) & 1) << 1
    return bits.view(-1)[:count].view(shape)


class Dropout(nn.Dropout):
    """nn.Dropout with the same distribution, drawn faster on the CPU.

    torch's CPU dropout draws one Bernoulli variable per element, which dominated a training step
    on a 2-core machine. Here p = 0.5 (the reference's rate) uses one random bit per element and
    other rates one uniform per element; on CUDA torch's fused kernel is used as it is.
    """

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or states.device.type != "cpu":
            return super().forward(states)
        if self.p == 0.5:
            mask = _half_dropout_mask(states.shape, states.device)
        else:
            mask = (torch.rand(states.shape, device=states.device) >= self.p).to(states.dtype) / (1 - self.p)
        return _ScaleByMask.apply(states, mask)


def split_heads(states: torch.Tensor, heads: int) -> torch.Tensor:
    """[batch, length, hidden] -> [batch, heads, length, hidden / heads]."""
    batch, length, size = states.shape
    return states.view(batch, length, heads, size // heads).transpose(1, 2)


class ItemEncoder(nn.Module):
    """An encoder of left-padded item ids with an item table `item_embedding`: the Backbone, and the
    encoders a model's `architecture` picks instead (models/kang205.py, models/sslrec.py)."""

    def last_state(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[batch, hidden]: the output at the last position, the user representation for scoring."""
        return self(input_ids)[:, -1]

    def item_scores(self, user_states: torch.Tensor) -> torch.Tensor:
        """[batch, hidden] -> [batch, vocab]: dot product with every embedding row (padding and mask too)."""
        return user_states @ self.item_embedding.weight.T


class SelfAttention(nn.Module):
    def __init__(self, settings: BackboneSettings) -> None:
        super().__init__()
        if settings.hidden_size % settings.heads:
            raise ValueError(f"hidden_size {settings.hidden_size} is not a multiple of heads {settings.heads}")
        self.heads = settings.heads
        self.head_size = settings.hidden_size // settings.heads
        self.query = nn.Linear(settings.hidden_size, settings.hidden_size)
        self.key = nn.Linear(settings.hidden_size, settings.hidden_size)
        self.value = nn.Linear(settings.hidden_size, settings.hidden_size)
        self.output = nn.Linear(settings.hidden_size, settings.hidden_size)
        self.attention_dropout = Dropout(settings.attention_dropout)
        self.output_dropout = Dropout(settings.dropout)
        self.norm = nn.LayerNorm(settings.hidden_size, eps=LAYER_NORM_EPS)

    def forward(self, states: torch.Tensor, additive_mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """`last_only`: outputs for the last position alone (keys and values still span all)."""
        queries = states[:, -1:] if last_only else states
        key, value = (split_heads(layer(states), self.heads) for layer in (self.key, self.value))
        query = split_heads(self.query(queries), self.heads)
        if last_only:
            additive_mask = additive_mask[:, :, -1:, :]
        logits = query @ key.transpose(-1, -2) / math.sqrt(self.head_size) + additive_mask
        weights = self.attention_dropout(torch.softmax(logits, dim=-1))
        context = (weights @ value).transpose(1, 2).reshape(queries.shape)
        return self.norm(self.output_dropout(self.output(context)) + queries)


class FeedForward(nn.Module):
    """LayerNorm(Dropout(W2 GELU(W1 x)) + x); without `residual` (MAERec's IntermediateLayer) no + x."""

    def __init__(self, settings: BackboneSettings, residual: bool = True, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.residual = residual
        self.expand = nn.Linear(settings.hidden_size, settings.inner_size)
        self.contract = nn.Linear(settings.inner_size, settings.hidden_size)
        self.dropout = Dropout(settings.dropout)
        self.norm = nn.LayerNorm(settings.hidden_size, eps=eps)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(self.contract(functional.gelu(self.expand(states), approximate="none")))
        return self.norm(hidden + states if self.residual else hidden)


class Block(nn.Module):
    def __init__(self, settings: BackboneSettings) -> None:
        super().__init__()
        self.attention = SelfAttention(settings)
        self.feed_forward = FeedForward(settings)

    def forward(self, states: torch.Tensor, additive_mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        return self.feed_forward(self.attention(states, additive_mask, last_only))


class Backbone(ItemEncoder):
    """input ids [batch, max_len] (left-padded with 0) -> outputs [batch, max_len, hidden].

    `causal=False` lets every position attend to every item (BERT4Rec's bidirectional encoder).
    """

    def __init__(self, vocab_size: int, settings: BackboneSettings, causal: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.causal = causal
        self.item_embedding = nn.Embedding(vocab_size, settings.hidden_size, padding_idx=0)
        self.position_embedding = nn.Embedding(settings.max_len, settings.hidden_size)
        self.embedding_norm = nn.LayerNorm(settings.hidden_size, eps=LAYER_NORM_EPS)
        self.embedding_dropout = Dropout(settings.dropout)
        self.blocks = nn.ModuleList(Block(settings) for _ in range(settings.layers))
        self.apply(self._initialise)

    def _initialise(self, module: nn.Module) -> None:
        # As the reference: every weight N(0, std), the padding row too; biases 0; LayerNorm 1/0.
        if isinstance(module, nn.Linear | nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=self.settings.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    @staticmethod
    def additive_mask(input_ids: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """[batch, 1, L, L]: 0 where query t may attend key s (s is an item and, if causal, s <= t),
        else -10000."""
        length = input_ids.shape[1]
        order = torch.ones(length, length, dtype=torch.bool, device=input_ids.device)
        if causal:
            order = order.tril()
        allowed = order[None, None, :, :] & (input_ids > 0)[:, None, None, :]
        return (~allowed).to(torch.float32) * MASKED_LOGIT

    def forward(self, input_ids: torch.Tensor, causal: bool | None = None) -> torch.Tensor:
        """`causal` overrides the encoder's own mask for this call (S3-Rec pre-trains the causal
        encoder it fine-tunes with a bidirectional mask)."""
        return self._encode(input_ids, last_only=False, causal=causal)

    def last_state(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[batch, hidden]: the output at the last position, the user representation for scoring.

        Equal to forward(...)[:, -1] (position-wise layers, and the last query needs every key and
        value of the last block but no other query), without computing the other 49 outputs of the
        last block: most of the cost of full-ranking evaluation with one layer.
        """
        return self._encode(input_ids, last_only=True)[:, -1]

    def _encode(self, input_ids: torch.Tensor, last_only: bool, causal: bool | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        states = self.item_embedding(input_ids) + self.position_embedding(positions)[None]
        states = self.embedding_dropout(self.embedding_norm(states))
        mask = self.additive_mask(input_ids, self.causal if causal is None else causal).to(states.dtype)
        for index, block in enumerate(self.blocks):
            states = block(states, mask, last_only and index == len(self.blocks) - 1)
        return states

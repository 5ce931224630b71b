"""DSSRec (Ma et al., "Disentangled Self-Supervision in Sequential Recommenders", KDD 2020):
pre-training of the SASRec encoder with a sequence-to-sequence objective in a space of K latent
intents, then fine-tuning it as SASRec.

No official code exists. This module follows the paper; where the paper is silent the details come
from the third-party re-implementation abis330/DSSRec (models.py, modules.py, datasets.py, utils.py;
the settings of docs/BASELINES.md: hidden 64, 2 layers, 1 head, dropout 0.5, K = 4, lambda 0.5,
pre-training of batch 256 at lr 1e-3 and seed 42, fine-tuning 200 epochs, patience 10). Fine-tuning
starts from pre-training epoch 30: the re-implementation pre-trains 300 epochs (--pre_epochs), saves
every epoch (pretrainer.py:80-93) and fine-tunes from the one `--ckp` names, default 30 (utils.py:28,
finetuner.py:80-83); variant `pretrain300` starts from epoch 300 (our default before).

Encoder: the shared causal SASRec backbone. Its feed-forward layer is the backbone's (inner size
256, GELU), as the DCRec authors' port of DSSRec uses; the re-implementation's is a ReLU Conv1d of
width D (ReLU after both convolutions).

Disentangled intent layer (`IntentLayer`, under `pretraining_heads`; fine-tuning never uses it),
applied to encoder outputs z [B, L, D] of a left-padded sequence:
- prototypes c_k (K x D, randn / sqrt(D)); intention clustering
  p_{k|i} = softmax_k <LN_a(z_i), LN_b(c_k)> / sqrt(D);
- intention weighting: key_i = LN_c(z_i + alpha_i) + ReLU(W LN_c(z_i + alpha_i)) (alpha a learned
  [max_len, D] position table, zeros at first; W a Linear D -> D with torch's default initialisation,
  as the re-implementation creates it after its N(0, 0.02) pass), query = LN_d(b' + alpha_last +
  z_last) (b' a learned D vector, zeros at first), p_i = softmax_i <key_i, query> / sqrt(D);
- aggregation phi_k = LN_e(beta_k + sum_i p_i p_{k|i} z_i), with one beta table [K, D]
  (randn / sqrt(D)) for input sequences and another for future sequences.
LN_a..LN_e are separate LayerNorms (eps 1e-12).

Pre-training samples (`pretraining_windows`, `split_sample`): windows of each user's training part
s_1..s_{n-2} (validation and test items are never seen): the whole part if it has at most max_len
items, else windows of max_len items starting at n - max_len, then max_len // 2 earlier each time
while the start is positive, and the window starting at the first item (the re-implementation's
sliding windows of step 0.5 max_len with the start 0 it appends). Each epoch every window draws a
split point t uniform in [1, len - 2]: input = seq[:t], future = seq[t:] reversed (so it ends with
the next item), next = seq[t], all left-padded. Objectives (sums over the batch, log base 2):
- seq2item: -log2[max_k exp(<phi_k(in_b), e_{next_b}>/sqrt(D)) / sum_k sum_b' exp(<phi_k(in_b),
  e_{next_b'}>/sqrt(D))] (e the backbone's item embedding; the other next items are the negatives);
- seq2seq: l_{b,k} = -log2[exp(<phi_k(in_b), phi_k(fut_b)>/sqrt(D)) / sum_k' sum_b'
  exp(<phi_k(in_b), phi_k'(fut_b')>/sqrt(D))], summed over the floor(confidence B K) smallest
  (lambda of the paper: only the confident (sequence, intent) pairs count);
- total = s2i_weight seq2item + s2s_weight seq2seq (1 and 1, as the re-implementation).

Departures from the re-implementation:
- padding positions are masked out of the position softmax (p_i = 0 there: the paper aggregates
  over the sequence's items; the re-implementation weights padding positions too);
- the start-0 window: the re-implementation slices the whole sequence as item_seq[i-2 : i+max_len-2],
  which is empty for its appended start 0 (and for start 1), a sample its __getitem__ then cannot
  draw a split for; here it is the training part's first max_len items, as intended;
- windows shorter than 3 items are dropped (the re-implementation special-cases 2 items with t = 1,
  an input of one item and a future of the next item alone, and 1 item with input = future = next);
- the confidence filter keeps exactly floor(confidence B K) losses (at least one) of the actual
  batch size B: the re-implementation uses the fixed pre-training batch size (a smaller last batch
  then asks for more losses than it has) and keeps every loss tied with the threshold;
- both losses are computed with logsumexp (the same value, no overflow of exp), in float32 also
  under `amp`;
- input and future sequences are encoded in one backbone pass (the re-implementation: two); with
  dropout drawn independently per element this is the same in distribution.

Fine-tuning is SASRec (causal mask, BCE with one negative per position, as the re-implementation's
`DSS` fine-tuning) from the pre-trained encoder; scoring is the last state against every item.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.models.backbone import LAYER_NORM_EPS
from elcrec.models.base import PRETRAINING_DEFAULTS, PRETRAINING_SETTINGS, Batch, NextItemRecommender, PretrainingData
from elcrec.models.registry import register

MIN_WINDOW = 3  # a split point in [1, len - 2] needs at least 3 items


@register
class DSSRec(NextItemRecommender):  # fine-tuning: SASRec
    name = "dssrec"
    pretrains = True
    defaults = (
        PRETRAINING_DEFAULTS
        | NextItemRecommender.defaults
        | {
            "heads": 1,  # paper / re-implementation (num_attention_heads 1); docs/BASELINES.md
            "epochs": 200,  # re-implementation's fine-tuning (utils.py --epochs 200); docs/BASELINES.md
            "patience": 10,  # re-implementation's finetuner.py: EarlyStopping(patience=10) on NDCG@20
            "pretrain_epochs": 30,  # re-implementation's --ckp 30: the epoch fine-tuning starts from
            "pretrain_batch_size": 256,  # re-implementation's --pre_batch_size 256; docs/BASELINES.md
            "intents": 4,  # K: re-implementation's --num_intents 4; docs/BASELINES.md
            "confidence": 0.5,  # lambda, the share of (sequence, intent) pairs kept: --lambda_ 0.5; docs/BASELINES.md
            "s2i_weight": 1.0,  # re-implementation's --s2i_weight 1.0
            "s2s_weight": 1.0,  # re-implementation's --s2s_weight 1.0
        }
    )
    pretraining_settings = PRETRAINING_SETTINGS | {
        "intents",
        "confidence",
        "s2i_weight",
        "s2s_weight",
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__(vocab_size, settings)
        if int(settings["intents"]) < 1:
            raise ElcrecError(f"dssrec: intents must be at least 1, got {settings['intents']!r}")
        if not 0 < float(settings["confidence"]) <= 1:
            raise ElcrecError(f"dssrec: confidence must be in (0, 1], got {settings['confidence']!r}")
        self.settings = settings

    # ----- pre-training -----
    def prepare_pretraining(self, data: PretrainingData) -> None:
        backbone = self.backbone.settings
        self.pretraining_heads = IntentLayer(backbone.hidden_size, int(self.settings["intents"]), backbone.max_len)

    def pretraining_batches(
        self, data: PretrainingData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Batch]:
        windows, lengths = pretraining_windows(data.train_sequences, data.max_len)
        if len(windows) == 0:
            raise ElcrecError(
                f"dssrec: no user of {data.dataset or 'the dataset'} has {MIN_WINDOW} training items to pre-train on"
            )
        order = torch.randperm(len(windows), generator=generator)
        # a split point t uniform in [1, len - 2] per window, in the shuffled order
        split = 1 + _uniform_below(lengths[order] - 2, generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield split_sample(windows[rows], lengths[rows], split[start : start + batch_size])

    def pretraining_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        inputs, future = batch["input"], batch["future"]
        states = self.backbone(torch.cat([inputs, future]))  # one pass; dropout is drawn per element
        input_states, future_states = states.split(len(inputs))
        heads: IntentLayer = self.pretraining_heads
        input_intents = heads(input_states, inputs > 0, future=False)
        future_intents = heads(future_states, future > 0, future=True)
        seq2item = seq2item_loss(input_intents, self.backbone.item_embedding(batch["next"]))
        seq2seq = seq2seq_loss(input_intents, future_intents, float(self.settings["confidence"]))
        total = float(self.settings["s2i_weight"]) * seq2item + float(self.settings["s2s_weight"]) * seq2seq
        return {"seq2item": seq2item, "seq2seq": seq2seq, "total": total}


class IntentLayer(nn.Module):
    """The disentangled layer: encoder outputs [B, L, D] of a left-padded sequence -> K intent
    representations [B, K, D] (the module docstring's p_{k|i}, p_i and phi_k)."""

    def __init__(self, hidden: int, intents: int, max_len: int) -> None:
        super().__init__()
        scale = 1 / math.sqrt(hidden)
        self.hidden = hidden
        self.prototypes = nn.Parameter(torch.randn(intents, hidden) * scale)  # c_k
        self.key_transform = nn.Linear(hidden, hidden)  # W (torch's default initialisation, as the re-implementation)
        self.position_bias = nn.Parameter(torch.zeros(max_len, hidden))  # alpha
        self.query_bias = nn.Parameter(torch.zeros(hidden))  # b'
        self.input_bias = nn.Parameter(torch.randn(intents, hidden) * scale)  # beta of input sequences
        self.future_bias = nn.Parameter(torch.randn(intents, hidden) * scale)  # beta of future sequences
        self.state_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)  # LN_a
        self.prototype_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)  # LN_b
        self.key_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)  # LN_c
        self.query_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)  # LN_d
        self.output_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)  # LN_e

    def intent_probabilities(self, states: torch.Tensor) -> torch.Tensor:
        """p_{k|i}: [B, L, D] -> [B, L, K], each position's distribution over the K prototypes."""
        logits = self.state_norm(states) @ self.prototype_norm(self.prototypes).T / math.sqrt(self.hidden)
        return torch.softmax(logits, dim=-1)

    def position_weights(self, states: torch.Tensor, is_item: torch.Tensor) -> torch.Tensor:
        """p_i: [B, L, D], [B, L] (False at padding) -> [B, L], a distribution over the item positions."""
        keys = self.key_norm(states + self.position_bias)
        keys = keys + torch.relu(self.key_transform(keys))
        query = self.query_norm(self.query_bias + self.position_bias[-1] + states[:, -1])
        logits = (keys @ query[:, :, None]).squeeze(-1) / math.sqrt(self.hidden)
        return torch.softmax(logits.masked_fill(~is_item, float("-inf")), dim=-1)

    def forward(self, states: torch.Tensor, is_item: torch.Tensor, future: bool) -> torch.Tensor:
        """phi: [B, L, D] -> [B, K, D]; `future` picks the future sequences' beta table."""
        weights = self.intent_probabilities(states) * self.position_weights(states, is_item)[:, :, None]
        bias = self.future_bias if future else self.input_bias
        return self.output_norm(bias + weights.transpose(1, 2) @ states)


def seq2item_loss(input_intents: torch.Tensor, next_embeddings: torch.Tensor) -> torch.Tensor:
    """Sum over b of -log2[max_k exp(s_{b,k,b}) / sum_k sum_b' exp(s_{b,k,b'})], s_{b,k,b'} =
    <phi_k(in_b), e_{next_b'}> / sqrt(D). input_intents [B, K, D], next_embeddings [B, D]."""
    intents, embeddings = input_intents.float(), next_embeddings.float()
    with torch.autocast(intents.device.type, enabled=False):  # float32 also under `amp`
        logits = torch.einsum("bkd,cd->bkc", intents, embeddings) / math.sqrt(intents.shape[-1])  # [B, K, B]
        positive = logits.diagonal(dim1=0, dim2=2).max(dim=0).values  # [B]: max_k s_{b,k,b}
        return ((logits.flatten(1).logsumexp(dim=1) - positive) / math.log(2)).sum()


def seq2seq_losses(input_intents: torch.Tensor, future_intents: torch.Tensor) -> torch.Tensor:
    """l_{b,k} = -log2[exp(s_{b,k,b,k}) / sum_k' sum_b' exp(s_{b,k,b',k'})], s_{b,k,b',k'} =
    <phi_k(in_b), phi_k'(fut_b')> / sqrt(D): [B, K]."""
    inputs, future = input_intents.float(), future_intents.float()
    scale = math.sqrt(inputs.shape[-1])
    with torch.autocast(inputs.device.type, enabled=False):  # float32 also under `amp`
        logits = torch.einsum("bkd,cjd->bkcj", inputs, future) / scale  # [B, K, B, K]
        positive = (inputs * future).sum(-1) / scale  # [B, K]
        return (logits.flatten(2).logsumexp(dim=2) - positive) / math.log(2)


def seq2seq_loss(input_intents: torch.Tensor, future_intents: torch.Tensor, confidence: float) -> torch.Tensor:
    """The sum of the floor(confidence B K) smallest l_{b,k} (at least one)."""
    losses = seq2seq_losses(input_intents, future_intents).flatten()
    kept = max(1, math.floor(confidence * losses.numel()))
    return losses.topk(kept, largest=False).values.sum()


def pretraining_windows(train_sequences: SequenceData, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each user's windows of the training part, oldest first, left-padded: ([W, max_len], lengths [W]).

    A part of n <= max_len items is one window; a longer one has windows of max_len items starting at
    n - max_len, n - max_len - step, ... (step max_len // 2) while the start is positive, and the one
    starting at the first item. Windows shorter than MIN_WINDOW items are dropped."""
    step = max(1, max_len // 2)
    lengths = train_sequences.lengths.astype(np.int64)
    firsts = train_sequences.offsets[:-1].astype(np.int64)
    counts = 1 + np.where(lengths > max_len, -(-(lengths - max_len) // step), 0)  # 1 + ceil((n - L) / step)
    user = np.repeat(np.arange(len(lengths)), counts)
    back = (np.repeat(np.cumsum(counts), counts) - 1) - np.arange(counts.sum())  # windows after this one
    size = np.minimum(lengths, max_len)[user]
    start = np.where(back == counts[user] - 1, 0, lengths[user] - max_len - back * step)
    keep = size >= MIN_WINDOW
    user, start, size = user[keep], start[keep], size[keep]
    first = firsts[user] + start
    positions = (first + size)[:, None] - max_len + np.arange(max_len)[None, :]
    items = np.where(positions >= first[:, None], train_sequences.items[np.clip(positions, 0, None)], 0)
    return torch.from_numpy(items.astype(np.int64)).reshape(-1, max_len), torch.from_numpy(size)


def split_sample(windows: torch.Tensor, lengths: torch.Tensor, split: torch.Tensor) -> Batch:
    """Windows [b, L] (left-padded, lengths [b]) cut at t = split [b]: input seq[:t], future seq[t:]
    reversed, both left-padded, and next seq[t]."""
    width = windows.shape[1]
    columns = torch.arange(width)[None, :]
    size, cut = lengths[:, None], split[:, None]
    # item j of a window is at column width - size + j
    input_items = windows.gather(1, (columns + cut - size).clamp(0, width - 1))
    future_length = size - cut
    future_items = windows.gather(1, (2 * width - 1 - columns - future_length).clamp(0, width - 1))
    return {
        "input": torch.where(columns >= width - cut, input_items, 0),
        "future": torch.where(columns >= width - future_length, future_items, 0),
        "next": windows.gather(1, width - size + cut).squeeze(1),
    }


def _uniform_below(high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per element, an integer uniform in [0, high) (high >= 1)."""
    return torch.minimum((torch.rand(high.shape, generator=generator) * high).long(), high - 1)

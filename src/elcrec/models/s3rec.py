"""S3-Rec (Zhou et al., CIKM 2020): self-supervised pre-training of the SASRec encoder with four
objectives, then fine-tuning it as SASRec. The official code (aHuiWang/CIKM2020-S3Rec, the code the
RUCAIBox repository points to; docs/BASELINES.md) is followed:

Pre-training (`pretraining_batches`, `pretraining_loss`; run by pretraining.py, rule `pretrain`):
- samples: every prefix of each user's last max_len training items (datasets.py PretrainDataset,
  `seq[-(max_len+2):-2]`, one sample per prefix), re-masked every epoch, left-padded;
- masking: every item but the last is replaced by the mask id with probability `mask_p`, the last
  always; a masked position gets a negative uniform over 1..vocab-1 (the mask id included, as
  `neg_sample`) outside the prefix's items;
- segments: a length uniform in 1..len//2 and a start uniform over the prefix; the positive
  segment is those items, the negative one a window of the same length of all users' sequences
  concatenated (`long_sequence`: the official pool holds every user's whole sequence, validation
  and test items included, and windows cross users; `segment_negatives: training` keeps it to
  the training part); both are mask ids outside the segment's span; a prefix of one item has
  all three sequences equal to itself;
- the encoder attends bidirectionally (a padding-only mask), the mask id is an ordinary token;
- AAP: sigmoid(attributes . W_aap h) against the item's multi-hot attributes, BCE summed over the
  unmasked items; MAP the same through W_map over the masked ones; MIP: BCE(sigmoid(s(pos) -
  s(neg)), 1) with s(x) = sigmoid(W_mip h . e_x), summed over masked positions; SP: the same
  double sigmoid between the last outputs of the masked-segment sequence and of the two
  segments, summed; total = 0.2 AAP + MIP + MAP + 0.5 SP (sums, not means, as the official code).
A zero weight leaves its objective out: the `ISP` variant (MIP and SP, no attributes; the paper's
S3-Rec column, quoted from ICLRec's table) is `aap_weight: 0, map_weight: 0`, as the official
command line would run it; Adam leaves weights with zero gradients unchanged, so skipping the
two terms changes nothing but the need for attributes.

Fine-tuning is SASRec (the official `finetune`: causal mask, BCE with one negative per position)
from the pre-trained encoder, with the official fine-tuning settings (200 epochs, patience 10 on
NDCG@20). The attribute table and the four heads live under `pretraining_heads`: fine-tuning
never uses them (the official model loads them and leaves them unused).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.models.base import PRETRAINING_DEFAULTS, PRETRAINING_SETTINGS, Batch, NextItemRecommender, PretrainingData
from elcrec.models.registry import register

OBJECTIVES = ("aap", "mip", "map", "sp")
SEGMENT_NEGATIVES = ("all", "training")


@register
class S3Rec(NextItemRecommender):  # fine-tuning: SASRec
    name = "s3rec"
    choices = NextItemRecommender.choices | {"segment_negatives": SEGMENT_NEGATIVES}
    pretrains = True
    defaults = (
        PRETRAINING_DEFAULTS
        | NextItemRecommender.defaults
        | {
            # official run_pretrain.py: batch 100, lr 1e-3 (the shared `lr`), seed 42, 300 epochs of which
            # the fine-tuning loads a fixed checkpoint: 150 for Beauty and Toys (config: 100 for Sports, Yelp)
            "pretrain_epochs": 150,
            "pretrain_batch_size": 100,
            "mask_p": 0.2,
            "aap_weight": 0.2,
            "mip_weight": 1.0,
            "map_weight": 1.0,
            "sp_weight": 0.5,
            "segment_negatives": "all",
            # official run_finetune_full.py: 200 epochs, early stopping after 10 on NDCG@20 (the backbone's
            # 64 dims, 2 layers, 2 heads, dropout 0.5, batch 256, lr 1e-3 are the package defaults already)
            "epochs": 200,
            "patience": 10,
        }
    )
    pretraining_settings = PRETRAINING_SETTINGS | {
        "mask_p",
        "aap_weight",
        "mip_weight",
        "map_weight",
        "sp_weight",
        "segment_negatives",
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__(vocab_size, settings)
        if settings["segment_negatives"] not in SEGMENT_NEGATIVES:
            raise ElcrecError(
                f"segment_negatives must be one of {SEGMENT_NEGATIVES}, got {settings['segment_negatives']!r}"
            )
        self.settings = settings
        self.weights = {objective: float(settings[f"{objective}_weight"]) for objective in OBJECTIVES}
        self.mask_id = vocab_size - 1

    @property
    def uses_attributes(self) -> bool:
        return self.weights["aap"] != 0 or self.weights["map"] != 0

    # ----- pre-training -----
    def prepare_pretraining(self, data: PretrainingData) -> None:
        hidden = self.backbone.settings.hidden_size
        heads = nn.ModuleDict({f"{objective}_norm": nn.Linear(hidden, hidden) for objective in OBJECTIVES})
        if self.uses_attributes:
            if data.attributes is None:
                raise ElcrecError(
                    f"s3rec: dataset {data.dataset or '(unnamed)'} has no item attributes, which AAP and MAP "
                    "predict; use the `ISP` variant (aap_weight 0, map_weight 0) or a dataset route with attributes"
                )
            multi_hot = attribute_matrix(data.attributes, data.vocab_size)
            heads["attribute_embedding"] = nn.Embedding(multi_hot.shape[1], hidden, padding_idx=0)
            self.register_buffer("attribute_targets", multi_hot, persistent=False)
        heads.apply(self.backbone._initialise)  # the official init_weights: N(0, 0.02), padding row too
        self.pretraining_heads = heads

    def pretraining_batches(
        self, data: PretrainingData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Batch]:
        prefixes = prefix_matrix(data.train_sequences, data.max_len)
        pool = data.sequences if self.settings["segment_negatives"] == "all" else data.train_sequences
        pool_items = torch.from_numpy(pool.items.astype(np.int64))
        order = torch.randperm(len(prefixes), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = prefixes[order[start : start + batch_size]]
            yield pretraining_sample(rows, self.mask_id, float(self.settings["mask_p"]), pool_items, generator)

    def pretraining_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        heads = self.pretraining_heads
        losses: dict[str, torch.Tensor] = {}
        masked = batch["masked_items"]
        is_masked = (masked == self.mask_id).to(torch.float32)
        if self.uses_attributes:
            outputs = self.backbone(masked, causal=False)
            attribute_table = heads["attribute_embedding"].weight
            targets = self.attribute_targets[batch["items"]].to(outputs.dtype)
            is_seen = (1 - is_masked) * (masked > 0).to(torch.float32)
            losses["aap"] = attribute_bce(heads["aap_norm"](outputs), attribute_table, targets, is_seen)
            losses["map"] = attribute_bce(heads["map_norm"](outputs), attribute_table, targets, is_masked)
        else:
            outputs = self.backbone(masked, causal=False) if self.weights["mip"] else None
        if self.weights["mip"]:
            embedding = self.backbone.item_embedding
            projected = heads["mip_norm"](outputs)
            distance = double_sigmoid_distance(projected, embedding(batch["items"]), embedding(batch["negatives"]))
            losses["mip"] = (bce_against_one(distance) * is_masked).sum()
        if self.weights["sp"]:
            last = [
                self.backbone(batch[key], causal=False)[:, -1]
                for key in ("masked_segments", "positive_segments", "negative_segments")
            ]
            distance = double_sigmoid_distance(heads["sp_norm"](last[0]), last[1], last[2])
            losses["sp"] = bce_against_one(distance).sum()
        losses["total"] = sum(self.weights[name] * value for name, value in losses.items())
        return losses


def attribute_matrix(attributes: dict[int, list[int]], vocab_size: int) -> torch.Tensor:
    """[vocab, max attribute id + 1] multi-hot rows (uint8): padding, the mask id and items without
    attributes are zero rows; column 0 is the (unused) padding attribute, as the official table."""
    width = max((max(ids) for ids in attributes.values() if ids), default=0) + 1
    matrix = torch.zeros(vocab_size, width, dtype=torch.uint8)
    for item, ids in attributes.items():
        if 0 < item < vocab_size and ids:
            matrix[item, torch.as_tensor(ids)] = 1
    return matrix


def prefix_matrix(train_sequences: SequenceData, max_len: int) -> torch.Tensor:
    """Every prefix of each user's last `max_len` training items, one per row, left-padded:
    [sum of the cut lengths, max_len] (official PretrainDataset.split_sequence)."""
    lengths = train_sequences.lengths
    ends = train_sequences.offsets[1:]
    cut = np.minimum(lengths, max_len)
    starts = ends - cut
    prefix_ends = np.concatenate([start + np.arange(1, size + 1) for start, size in zip(starts, cut, strict=True)])
    prefix_starts = np.repeat(starts, cut)
    positions = prefix_ends[:, None] - max_len + np.arange(max_len)[None, :]
    inside = positions >= prefix_starts[:, None]
    items = np.where(inside, train_sequences.items[np.clip(positions, 0, None)], 0)
    return torch.from_numpy(items.astype(np.int64))


def _uniform_below(high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per element, an integer uniform in [0, high) (high >= 1)."""
    return torch.minimum((torch.rand(high.shape, generator=generator) * high).long(), high - 1)


def pretraining_sample(
    prefixes: torch.Tensor, mask_id: int, mask_p: float, pool: torch.Tensor, generator: torch.Generator
) -> Batch:
    """One batch of the official PretrainDataset.__getitem__, vectorised over its rows (prefixes
    [b, L], left-padded): the masked items and their negatives (MIP, MAP), and the masked-segment
    sequence with its positive and negative segments (SP)."""
    batch, width = prefixes.shape
    is_item = prefixes > 0
    lengths = is_item.sum(dim=1)
    columns = torch.arange(width)[None, :]
    # MIP/MAP: each item but the last masked with probability mask_p, the last always
    chosen = (torch.rand(prefixes.shape, generator=generator) < mask_p) & is_item
    chosen[:, -1] = True
    masked_items = torch.where(chosen, torch.full_like(prefixes, mask_id), prefixes)
    negatives = torch.randint(1, mask_id + 1, prefixes.shape, generator=generator)
    redraw = chosen & (negatives[:, :, None] == prefixes[:, None, :]).any(dim=2)
    while redraw.any():
        negatives[redraw] = torch.randint(1, mask_id + 1, (int(redraw.sum()),), generator=generator)
        rows = redraw.nonzero(as_tuple=True)[0]
        redraw[redraw.clone()] = (negatives[redraw][:, None] == prefixes[rows]).any(dim=1)
    negatives = torch.where(chosen, negatives, prefixes)  # unmasked positions: the item itself, as official
    # SP: a segment of 1..len//2 items at a start uniform over the prefix; a negative of the same length
    segment_length = 1 + _uniform_below((lengths // 2).clamp(min=1), generator)
    segment_start = _uniform_below(lengths - segment_length + 1, generator)  # within the prefix
    negative_start = _uniform_below(len(pool) - segment_length + 1, generator)
    first = (width - lengths + segment_start)[:, None]  # the segment's first column
    in_segment = (columns >= first) & (columns < first + segment_length[:, None])
    from_pool = pool[(negative_start[:, None] + columns - first).clamp(0, len(pool) - 1)]
    mask_row = torch.full_like(prefixes, mask_id)
    masked_segments = torch.where(in_segment, mask_row, prefixes)
    positive_segments = torch.where(in_segment, prefixes, torch.where(is_item, mask_row, 0))
    negative_segments = torch.where(in_segment, from_pool, torch.where(is_item, mask_row, 0))
    single = (lengths < 2)[:, None]  # a one-item prefix: all three are the prefix itself
    return {
        "items": prefixes,
        "masked_items": masked_items,
        "negatives": negatives,
        "masked_segments": torch.where(single, prefixes, masked_segments),
        "positive_segments": torch.where(single, prefixes, positive_segments),
        "negative_segments": torch.where(single, prefixes, negative_segments),
    }


def attribute_bce(
    projected: torch.Tensor, attribute_table: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """AAP / MAP: BCE(sigmoid(attribute_table . projected), multi-hot targets) over every attribute,
    weighted per position and summed. projected [b, L, h], table [A, h], targets [b, L, A], weights [b, L]."""
    scores = torch.sigmoid(projected @ attribute_table.T)
    losses = functional.binary_cross_entropy(scores, targets, reduction="none")
    return (losses * weights[..., None]).sum()


def double_sigmoid_distance(projected: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """The official MIP / SP score: sigmoid(sigmoid(p . pos) - sigmoid(p . neg)) over the last axis."""
    positive_score = torch.sigmoid((projected * positive).sum(-1))
    negative_score = torch.sigmoid((projected * negative).sum(-1))
    return torch.sigmoid(positive_score - negative_score)


def bce_against_one(probability: torch.Tensor) -> torch.Tensor:
    """torch's BCELoss against a target of one, elementwise: -log(p), the log clamped at -100."""
    return functional.binary_cross_entropy(probability, torch.ones_like(probability), reduction="none")

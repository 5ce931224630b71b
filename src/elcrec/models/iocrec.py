"""IOCRec (Li et al., "Multi-Intention Oriented Contrastive Learning for Sequential Recommendation",
WSDM 2023) as its official code runs it (LFM-bot/IOCRec, src/model/cl_based_seq_recommender/iocrec.py,
cited below as iocrec.py:LINE).

- Local encoder: the SASRec Transformer (our backbone; the official one, sequential_encoder.py, is the
  same post-LN causal encoder with key-padding mask, erf GELU and LayerNorm eps 1e-12; it fills masked
  logits with -1e10 instead of adding -10000: the same weights whenever a row has an item, as key 0
  then is one; they differ only on rows of padding alone, which the official training never has).
- Global encoder: learned per-position queries Q_s [max_len, d] attend, without any mask, over the
  item embeddings of all max_len positions (iocrec.py:132-161).
- Disentangling: K intent prototypes; each position's weight for intent k is softmax_k(LN(x).LN(c_k)/
  sqrt(d)) times an attention weight over positions queried by the last item (iocrec.py:194-250); the
  weighted, layer-normalised states of the local and the global encoder are summed: [b, K, L, d].
- Next-item loss: full-softmax cross-entropy over every vocabulary row of the scores max_k h_k . e_v,
  h_k the intent-k state at the last item (iocrec.py:77-78, 96-108; abstract_recommeder.py `CE`).
- Intent-level contrastive loss: NT-Xent (dot product, temperature tau) between the two views'
  [b*K, L*d] flattened intent states; the positive of (user, intent) is the same pair in the other
  view (iocrec.py:80-94, loss.py InfoNCELoss).
- Score: max over intents (iocrec.py:104-106).

The official code pads on the RIGHT and reads the last item at seq_len - 1 (dataset.py
get_SRtask_input). The global encoder and the disentangling attention have no padding mask and use
absolute positions, so padding on the left would change what they compute: every input is moved to
right padding here before encoding (`right_padded`).

The official trainer expands every training sequence into all its prefixes, each one example with
its own target and its own two views (data_processor.py `_data_augmentation`, data_aug on by
default), and a step is 256 shuffled examples (514 steps an epoch on Beauty): every prefix of the
whole training input, cut to its last max_len items, its views made from the uncut prefix and then
cut. The default `batch_unit: whole-prefixes` does the same (data/batches.py `prefix_batches`, the
uncut prefix under "whole"). The model is not causal
(the global encoder and the last-item query see the whole input), so a prefix's state cannot be read
off the full sequence. With `batch_unit: users` (variant `user-batches`: 256 users a step, about 1,500
examples, two views per user), `prefixes: true` runs every prefix of a user's input through the model
as its own row; `false` (variant `last-item`) keeps only the whole input's last item.

The official views (dataset.py CL4SRecDataset, data_augmentation.py Crop/Mask/Reorder) differ from the
protocol's: masked items become the spare mask id (vocab - 1), not padding, and crop and reorder
start uniformly in [0, m - size] (the protocol's code: [0, m - size - 1]). `views: official` builds
them here from the batch's input; `views: protocol` uses the batch's own views instead.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.data.batches import AUGMENTATIONS
from elcrec.models.backbone import Dropout
from elcrec.models.base import Batch, RecommenderModel, backbone_from
from elcrec.models.losses import info_nce
from elcrec.models.registry import register

VIEW_SOURCES = ("official", "protocol")
DISENTANGLE_NORM_EPS = 1e-5  # iocrec.py:173-177: nn.LayerNorm(embed_size), torch's default eps


def right_padded(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded rows -> the same columns from the first non-padding one on, moved to column 0,
    and each row's length (its width minus the leading padding; a row of padding has length 0).

    Zeros inside a row (the protocol's masked items) are kept where they are in the sequence."""
    leading = leading_padding(ids)
    return moved_to_front(ids, leading), ids.shape[1] - leading


def leading_padding(ids: torch.Tensor) -> torch.Tensor:
    """[b, L] -> [b]: the number of padding columns before each row's first item."""
    present = ids > 0
    return torch.where(present.any(dim=1), present.to(torch.int8).argmax(dim=1), ids.shape[1])


def moved_to_front(values: torch.Tensor, leading: torch.Tensor) -> torch.Tensor:
    """Each row's columns from `leading` on, moved to column 0, zeros after them."""
    width = values.shape[1]
    columns = torch.arange(width, device=values.device)[None, :]
    moved = values.gather(1, (columns + leading[:, None]).clamp(max=width - 1))
    return torch.where(columns < (width - leading)[:, None], moved, torch.zeros_like(moved))


def prefix_examples(
    ids: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, every_prefix: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded inputs [b, L] with lengths and right-padded next-item targets -> one row per
    example: the prefix s_1..s_t (right-padded), t, and its target s_{t+1}.

    `every_prefix` gives t = 1..m of every row (the official prefix expansion), else t = m only."""
    device = ids.device
    if every_prefix:
        rows = torch.repeat_interleave(torch.arange(len(ids), device=device), lengths)
        starts = torch.cumsum(lengths, 0) - lengths
        prefix_lengths = torch.arange(len(rows), device=device) - starts[rows] + 1
    else:
        rows = torch.nonzero(lengths > 0).flatten()
        prefix_lengths = lengths[rows]
    columns = torch.arange(ids.shape[1], device=device)[None, :]
    prefixes = torch.where(columns < prefix_lengths[:, None], ids[rows], torch.zeros_like(ids[rows]))
    return prefixes, prefix_lengths, targets[rows, prefix_lengths - 1]


def last_items(ids: torch.Tensor, lengths: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded rows -> each row's last `width` items, right-padded [b, width], and their count."""
    cut = moved_to_front(ids, (lengths - width).clamp(min=0))[:, :width]
    if cut.shape[1] < width:
        cut = functional.pad(cut, (0, width - cut.shape[1]))
    return cut, lengths.clamp(max=width)


def _uniform_upto(high: torch.Tensor) -> torch.Tensor:
    """Per-row integer uniform in [0, high] (Python's random.randint(0, high))."""
    draws = torch.rand(high.shape, device=high.device)
    return torch.minimum((draws * (high + 1)).long(), high)


def official_crop(ids: torch.Tensor, lengths: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """data_augmentation.py Crop: int(ratio * m) items from a start uniform in [0, m - size]; when
    that is 0 items, the one item at min(start, m - 1). Right-padded in and out."""
    size = torch.floor(ratio * lengths.double()).long()
    start = _uniform_upto(lengths - size)
    start = torch.where(size < 1, torch.minimum(start, (lengths - 1).clamp(min=0)), start)
    size = torch.where(lengths > 0, size.clamp(min=1), size)
    columns = torch.arange(ids.shape[1], device=ids.device)[None, :]
    taken = ids.gather(1, (columns + start[:, None]).clamp(max=ids.shape[1] - 1))
    return torch.where(columns < size[:, None], taken, torch.zeros_like(taken)), size


def official_mask(ids: torch.Tensor, lengths: torch.Tensor, ratio: float, mask_id: int) -> torch.Tensor:
    """data_augmentation.py Mask: int(ratio * m) distinct items replaced by the mask id."""
    count = torch.floor(ratio * lengths.double()).long()
    columns = torch.arange(ids.shape[1], device=ids.device)[None, :]
    is_item = columns < lengths[:, None]
    keys = torch.where(is_item, torch.rand(ids.shape, device=ids.device), torch.full(ids.shape, 2.0, device=ids.device))
    rank = keys.argsort(dim=1).argsort(dim=1)  # a random order of each row's items
    return torch.where(rank < count[:, None], torch.full_like(ids, mask_id), ids)


def official_reorder(ids: torch.Tensor, lengths: torch.Tensor, ratio: float) -> torch.Tensor:
    """data_augmentation.py Reorder: a window of int(ratio * m) items, starting uniformly in
    [0, m - size], shuffled."""
    size = torch.floor(ratio * lengths.double()).long()
    start = _uniform_upto(lengths - size).double()
    columns = torch.arange(ids.shape[1], device=ids.device)[None, :].double()
    inside = (columns >= start[:, None]) & (columns < (start + size)[:, None])
    keys = start[:, None] + size[:, None] * torch.rand(ids.shape, device=ids.device).double()
    return ids.gather(1, torch.where(inside, keys, columns).argsort(dim=1))


def official_views(
    ids: torch.Tensor, lengths: torch.Tensor, settings: dict, mask_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views per right-padded row ([2b, L], view one first) and their lengths; with
    `augmentation: random` each view picks crop, mask or reorder uniformly (dataset.py
    CL4SRecDataset.__getitem__: np.random.choice, with replacement)."""
    pairs_ids, pairs_lengths = torch.cat([ids, ids]), torch.cat([lengths, lengths])
    cropped, crop_lengths = official_crop(pairs_ids, pairs_lengths, settings["tau"])
    made = {
        "crop": (cropped, crop_lengths),
        "mask": (official_mask(pairs_ids, pairs_lengths, settings["gamma"], mask_id), pairs_lengths),
        "reorder": (official_reorder(pairs_ids, pairs_lengths, settings["beta"]), pairs_lengths),
    }
    method = settings["augmentation"]
    if method in made:
        return made[method]
    if method != "random":
        raise ElcrecError(f"iocrec: augmentation must be 'random' or one of {AUGMENTATIONS}, got {method!r}")
    choice = torch.randint(0, len(AUGMENTATIONS), (len(pairs_ids),), device=ids.device)
    views, view_lengths = torch.zeros_like(pairs_ids), torch.zeros_like(pairs_lengths)
    for index, name in enumerate(AUGMENTATIONS):
        chosen = choice == index
        views = torch.where(chosen[:, None], made[name][0], views)
        view_lengths = torch.where(chosen, made[name][1], view_lengths)
    return views, view_lengths


def max_intent_logits(intent_states: torch.Tensor, item_weights: torch.Tensor) -> torch.Tensor:
    """[n, K, d], [vocab, d] -> [n, vocab]: each item's best score over the K intents."""
    return (intent_states @ item_weights.T).max(dim=1).values


def max_intent_cross_entropy(
    intent_states: torch.Tensor, item_weights: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Softmax cross-entropy over every vocabulary row (padding and mask rows too, as the official
    candidates = item_embedding.weight), mean over examples."""
    return functional.cross_entropy(max_intent_logits(intent_states, item_weights), targets)


def intent_contrastive_loss(view_one: torch.Tensor, view_two: torch.Tensor, temperature: float) -> torch.Tensor:
    """[b, K, L, d] each -> NT-Xent over the b*K (user, intent) rows flattened to L*d features."""
    rows = view_one.shape[0] * view_one.shape[1]
    return info_nce(view_one.reshape(rows, -1), view_two.reshape(rows, -1), temperature)


class GlobalEncoder(nn.Module):
    """iocrec.py:132-161: softmax(Q_s K^T) V over every position, padding included, no scaling."""

    def __init__(self, hidden_size: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(max_len, hidden_size))  # torch.randn: N(0, 1), never re-initialised
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dropout = Dropout(dropout)

    def forward(self, item_states: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.queries @ self.key(item_states).transpose(1, 2), dim=-1)
        return self.dropout(weights @ self.value(item_states))


class IntentDisentangler(nn.Module):
    """iocrec.py:164-250, shared by the local and the global states."""

    def __init__(self, intents: int, hidden_size: int, max_len: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.prototypes = nn.Parameter(torch.randn(intents, hidden_size))  # N(0, 1), as the official
        self.position = nn.Embedding(max_len, hidden_size)
        self.query_offset = nn.Parameter(torch.randn(hidden_size))  # `rou`, N(0, 1)
        self.key_transform = nn.Linear(hidden_size, hidden_size)
        self.item_norm, self.prototype_norm, self.query_norm, self.key_norm, self.output_norm = (
            nn.LayerNorm(hidden_size, eps=DISENTANGLE_NORM_EPS) for _ in range(5)
        )

    def intent_scores(self, states: torch.Tensor) -> torch.Tensor:
        """[..., d] -> [..., K]: each state's softmax over the intents (item2IntentionScore)."""
        logits = self.item_norm(states) @ self.prototype_norm(self.prototypes).T
        return torch.softmax(logits / math.sqrt(self.hidden_size), dim=-1)

    def position_weights(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[b, L, d] -> [b, L]: attention over all L positions (padding too) queried by the last
        item's state plus its position and an offset (item2AttnWeight)."""
        last = (lengths - 1).clamp(min=0)
        rows = torch.arange(len(states), device=states.device)
        query = self.query_norm(states[rows, last] + self.position(last) + self.query_offset)
        keys = self.key_norm(states + self.position.weight[None, : states.shape[1]])
        keys = keys + torch.relu(self.key_transform(keys))
        logits = (keys @ query[:, :, None]).squeeze(-1) / math.sqrt(self.hidden_size)
        return torch.softmax(logits, dim=-1)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[b, L, d] -> [b, K, L, d]: every position's state weighted for every intent."""
        fused = self.intent_scores(states) * self.position_weights(states, lengths)[:, :, None]  # [b, L, K]
        return self.output_norm(fused.transpose(1, 2)[..., None] * states[:, None])

    def last(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """forward(...)[:, :, length - 1] -> [b, K, d], without weighting the other positions."""
        rows = torch.arange(len(states), device=states.device)
        last_state = states[rows, (lengths - 1).clamp(min=0)]
        weight = self.position_weights(states, lengths)[rows, (lengths - 1).clamp(min=0)]
        fused = self.intent_scores(last_state) * weight[:, None]  # [b, K]
        return self.output_norm(fused[:, :, None] * last_state[:, None])


@register
class IOCRec(RecommenderModel):
    name = "iocrec"
    choices: ClassVar[dict] = {"views": VIEW_SOURCES}
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # the shared protocol's 64 dimensions (official 128, tuned on Toys: runIOCRec.py:24)
        "layers": 3,  # official num_blocks (runIOCRec.py:26)
        "heads": 2,  # official num_heads (runIOCRec.py:27)
        "inner_size": 512,  # official ffn_hidden (runIOCRec.py:25), kept although the dimension is 64
        "dropout": 0.5,  # official hidden_dropout (runIOCRec.py:28)
        "attention_dropout": 0.5,  # official attn_dropout (runIOCRec.py:29)
        "clusters": 4,  # K intent prototypes, official k_intention (runIOCRec.py:22)
        "cl_weight": 0.1,  # official lamda (runIOCRec.py:20)
        "temperature": 1.0,  # official tao (runIOCRec.py:19)
        # official: a step is 256 shuffled examples, every prefix of the whole training input (data_aug),
        # each cut to max_len, its views from the uncut prefix (data_processor.py:389, 546-557; dataset.py:97-101)
        "batch_unit": "whole-prefixes",
        "prefixes": True,  # with `batch_unit: users`: every prefix of a user's input one example
        "views": "official",  # official crop/mask/reorder (mask -> mask id); `protocol`: the batch's views
        # crop 0.2 / mask 0.7 / reorder 0.2 (runIOCRec.py:12-16) are the package's tau/gamma/beta.
        "epochs": 150,  # official (runIOCRec.py:35)
        "patience": 10,  # official (runIOCRec.py:40), on valid NDCG@20 (official HR@10: the protocol's metric)
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        if settings["views"] not in VIEW_SOURCES:
            raise ElcrecError(f"iocrec: views must be one of {VIEW_SOURCES}, got {settings['views']!r}")
        self.backbone = backbone_from(vocab_size, settings)  # the local encoder and the item embedding
        size, max_len = self.backbone.settings.hidden_size, self.backbone.settings.max_len
        self.global_encoder = GlobalEncoder(size, max_len, self.backbone.settings.dropout)
        self.disentangler = IntentDisentangler(settings["clusters"], size, max_len)
        self.settings = {key: settings[key] for key in (*self.defaults, "augmentation", "tau", "gamma", "beta")}
        # a batch of prefix examples is one example a row: its last item only
        self.every_prefix = settings["prefixes"] and settings["batch_unit"] == "users"
        self.mask_id = vocab_size - 1
        self.needs_views = settings["views"] == "protocol"
        self._initialise(self.backbone.settings.init_std)

    def _initialise(self, std: float) -> None:
        """iocrec.py:62-69: every Linear and Embedding weight N(0, std); its `elif` for Linear biases
        is unreachable, so biases keep torch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.data.normal_(mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                bound = 1 / math.sqrt(module.in_features)
                module.bias.data.uniform_(-bound, bound)

    def _encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids -> the local (Transformer) and global states, [n, L, d] each."""
        return self.backbone(ids), self.global_encoder(self.backbone.item_embedding(ids))

    def intent_states(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Right-padded ids -> [n, K, d]: every intent's state at the last item."""
        local, global_ = self._encode(ids)
        return self.disentangler.last(local, lengths) + self.disentangler.last(global_, lengths)

    def _views(self, batch: Batch, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.needs_views:
            return right_padded(batch["views"])
        if "whole" in batch:  # the uncut prefix, augmented, then cut to its last max_len items (dataset.py:97-101)
            views, view_lengths = official_views(*right_padded(batch["whole"]), self.settings, self.mask_id)
            return last_items(views, view_lengths, ids.shape[1])
        return official_views(ids, lengths, self.settings, self.mask_id)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        leading = leading_padding(batch["input"])
        ids, lengths = moved_to_front(batch["input"], leading), batch["input"].shape[1] - leading
        targets = moved_to_front(batch["target"], leading)  # target t is the item after input t
        prefixes, prefix_lengths, prefix_targets = prefix_examples(ids, lengths, targets, self.every_prefix)
        views, view_lengths = self._views(batch, ids, lengths)
        # one encoder pass over the prefixes and both views: rows are independent (own dropout)
        local, global_ = self._encode(torch.cat([prefixes, views]))
        count = len(prefixes)
        states = self.disentangler.last(local[:count], prefix_lengths)
        states = states + self.disentangler.last(global_[:count], prefix_lengths)
        if count:
            next_item = max_intent_cross_entropy(states, self.backbone.item_embedding.weight, prefix_targets)
        else:  # a batch of empty inputs has no next-item example
            next_item = states.sum() * 0
        view_states = self.disentangler(local[count:], view_lengths) + self.disentangler(global_[count:], view_lengths)
        one, two = view_states.chunk(2)
        contrastive = intent_contrastive_loss(one, two, self.settings["temperature"])
        total = next_item + self.settings["cl_weight"] * contrastive
        return {"next_item": next_item, "intent_cl": contrastive, "total": total}

    def score(self, batch: Batch) -> torch.Tensor:
        ids, lengths = right_padded(batch["input"])
        return max_intent_logits(self.intent_states(ids, lengths), self.backbone.item_embedding.weight)

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each user's intent that scores its top item, and that intent's state."""
        ids, lengths = right_padded(batch["input"])
        states = self.intent_states(ids, lengths)
        best = (states @ self.backbone.item_embedding.weight.T).max(dim=2).values.argmax(dim=1)
        return states[torch.arange(len(states), device=states.device), best], best

"""The interface every model implements; the training loop knows nothing model-specific.

A model is built as `Model(vocab_size, settings)`. `loss(batch)` returns named loss tensors,
"total" among them (the others are logged per epoch); `score(batch)` returns [batch, vocab]
scores for full-ranking evaluation. `prepare(train_sequences)` is called once, before training
and before a saved model is scored, with every user's training interactions (models that derive
fixed structures from them, such as item graphs, build them here as non-persistent buffers, so a
model file never carries them and they are rebuilt from the data). `on_epoch_start(context)` is an
optional hook (e.g. the k-means of ICLRec and of ELCRec's initialisation). A model that sets `needs_views` gets two
augmented views of every training input in `batch["views"]` ([2b, max_len], view one first).

A model with a pre-training stage (S3-Rec, DSSRec) sets `pretrains` and implements the
pre-training objective: `prepare_pretraining(data)` adds the modules only pre-training uses
(under `pretraining_heads`, so fine-tuning, which starts from every other pre-trained weight,
never carries them), `pretraining_batches(data, batch_size, generator)` yields one epoch's
batches and `pretraining_loss(batch)` their named losses ("total" among them). The loop that
runs them is pretraining.py's; `pretraining_settings` names the settings the pre-training reads,
so fine-tuning runs that agree on them share one pre-training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from elcrec import ElcrecError
from elcrec.data.batches import ItemSets
from elcrec.data.sequences import SequenceData
from elcrec.models.backbone import Backbone, BackboneSettings
from elcrec.models.losses import NEXT_ITEM_LOSSES, next_item_loss

Batch = dict[str, torch.Tensor]
# the submodule of a pre-training model that only pre-training uses (its heads, attribute table)
PRETRAINING_HEADS = "pretraining_heads"
# the settings of every model with a pre-training stage (its `defaults` start from these): which
# pre-training a fine-tuning run starts from (fine-tuning runs that name the same one share it, and
# must then agree on every setting it reads; one an exclusive run uses is timed alone too), its
# epochs (no validation, no early stopping: the official S3-Rec fine-tunes from a fixed epoch's
# checkpoint), batch size, learning rate and seed (one pre-training per dataset serves every
# fine-tuning seed, as the official S3-Rec's single checkpoint)
PRETRAINING_DEFAULTS = {
    "pretraining": "default",
    "pretrain_epochs": 300,
    "pretrain_batch_size": 256,
    "pretrain_lr": 1e-3,
    "pretrain_seed": 42,
}


# the settings every pre-training reads: the encoder's shape, its own epochs, batch size, learning
# rate and seed, and the optimiser's; a model's `pretraining_settings` adds its objectives' own
PRETRAINING_SETTINGS = frozenset(BackboneSettings.__dataclass_fields__) | {
    "pretrain_epochs",
    "pretrain_batch_size",
    "pretrain_lr",
    "pretrain_seed",
    "adam_betas",
    "weight_decay",
    "amp",
}


# the next-item loss of every model on the SASRec backbone: `bce` (the code's), `ce` or `sampled_ce`
# with `ce_negatives` items (losses.next_item_loss; docs/BEYOND.md)
NEXT_ITEM_DEFAULTS = {"next_item_loss": "bce", "ce_negatives": 1000}
NEXT_ITEM_CHOICES = {"next_item_loss": NEXT_ITEM_LOSSES}


class NextItemObjective:
    """A model's next-item loss from its settings, checked once when the model is built."""

    def __init__(self, settings: dict) -> None:
        self.kind, self.negatives = settings["next_item_loss"], settings["ce_negatives"]
        if self.kind not in NEXT_ITEM_LOSSES:
            raise ElcrecError(f"next_item_loss is {self.kind!r}; expected one of {list(NEXT_ITEM_LOSSES)}")
        if isinstance(self.negatives, bool) or not isinstance(self.negatives, int) or self.negatives < 1:
            raise ElcrecError(f"ce_negatives is {self.negatives!r}; expected a whole number of at least 1")

    def __call__(self, outputs: torch.Tensor, embedding: nn.Embedding, batch: Batch) -> torch.Tensor:
        return next_item_loss(self.kind, outputs, embedding, batch, self.negatives)


@dataclass(frozen=True)
class PretrainingData:
    """What a pre-training objective may look at: every user's training interactions s_1..s_{n-2},
    the vocabulary, the item attributes (item id -> attribute ids from 1; None for a dataset
    without) and every user's whole sequence, validation and test items included: only the official
    S3-Rec's negative segments read it (a named option keeps them to the training part)."""

    train_sequences: SequenceData
    sequences: SequenceData
    vocab_size: int
    max_len: int
    attributes: dict[int, list[int]] | None
    dataset: str = ""  # named in errors (a model that needs attributes on a dataset without them)

    @classmethod
    def of(
        cls, sequences: SequenceData, max_len: int, attributes: dict[int, list[int]] | None, dataset: str = ""
    ) -> PretrainingData:
        """From a dataset's whole sequences: its training part s_1..s_{n-2} and vocabulary follow."""
        return cls(sequences.training_part(), sequences, sequences.vocab_size, max_len, attributes, dataset)


@dataclass(frozen=True)
class EpochContext:
    """What an epoch hook may look at: the epoch (from 0), the run seed and every training input."""

    epoch: int
    seed: int
    train_input: torch.Tensor  # [users, max_len], on the CPU
    train_target: torch.Tensor  # [users, max_len]: the next item of every input position
    batch_size: int
    device: torch.device
    train_sequences: SequenceData | None = None  # s_1..s_{n-2} of every user, uncut (Split.train_sequences)
    # each user's whole-sequence item set (validation and test items included), the one negatives are
    # rejected against (data/batches.py sample_negatives), for models that draw further negatives
    item_sets: ItemSets | None = None


class RecommenderModel(nn.Module):
    name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}  # the model's own settings and their defaults
    choices: ClassVar[dict[str, tuple]] = {}  # the allowed values of its text settings (settings.check)
    needs_views: ClassVar[bool] = False
    needs_whole: ClassVar[bool] = False  # user batches carry the uncut training input (data/batches.py)
    needs_users: ClassVar[bool] = False  # built with the number of users (user-id embeddings)
    pretrains: ClassVar[bool] = False  # has a pre-training stage (pretraining.py) before training
    pretraining_settings: ClassVar[frozenset[str]] = frozenset()  # the settings the pre-training reads

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def score(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, train_sequences: SequenceData) -> None:
        """Called once with every user's training interactions s_1..s_{n-2}; nothing by default."""

    def on_epoch_start(self, context: EpochContext) -> None:
        """Called by the training loop before every epoch; nothing by default."""

    @classmethod
    def pretraining_identity(cls, settings: dict) -> dict:
        """The settings the pre-training depends on: runs whose identities are equal can share it."""
        if not cls.pretrains:
            raise ValueError(f"model {cls.name!r} has no pre-training stage")
        return {key: settings[key] for key in sorted(cls.pretraining_settings)}

    def prepare_pretraining(self, data: PretrainingData) -> None:
        """Adds the pre-training-only modules as `self.pretraining_heads` (models that pretrain)."""
        raise NotImplementedError(f"model {self.name!r} has no pre-training stage")

    def pretraining_batches(
        self, data: PretrainingData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Batch]:
        raise NotImplementedError(f"model {self.name!r} has no pre-training stage")

    def pretraining_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"model {self.name!r} has no pre-training stage")

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """User embeddings (the mean over positions, as clustered) and each user's intent, or None
        for models without intents; called in eval mode for the t-SNE figure."""
        return self.backbone(batch["input"]).mean(dim=1), None


class NextItemRecommender(RecommenderModel):
    """SASRec as the reference trains it (PROTOCOL.md "Next-item loss"): the backbone, binary
    cross-entropy with one sampled negative per position (or `next_item_loss`), scores from the last
    position. SASRec itself, and the fine-tuning stage of the pre-training baselines (S3-Rec, DSSRec)."""

    defaults: ClassVar[dict] = NEXT_ITEM_DEFAULTS
    choices: ClassVar[dict[str, tuple]] = NEXT_ITEM_CHOICES

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        self.backbone = self.encoder(vocab_size, settings)
        self.next_item = NextItemObjective(settings)

    def encoder(self, vocab_size: int, settings: dict) -> nn.Module:
        """The encoder: the backbone (SASRec's `architecture` may name another with its interface)."""
        return backbone_from(vocab_size, settings)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        next_item = self.next_item(self.backbone(batch["input"]), self.backbone.item_embedding, batch)
        return {"next_item": next_item, "total": next_item}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.backbone.last_state(batch["input"]))


def training_items(batch: Batch) -> torch.Tensor:
    """Each user's training interactions s_1..s_{n-2}, right-aligned: [b, max_len + 1] (the inputs
    s_1..s_{n-3} and the last target; target t is input t + 1), or uncut where the batch has "whole"."""
    return torch.cat([batch.get("whole", batch["input"]), batch["target"][:, -1:]], dim=1)


def view_rows(batch: Batch, shared_views: bool) -> list[torch.Tensor]:
    """The rows of the one encoder pass: the main inputs, the views for instance CL and, unless
    `shared_views` (a named speed option), the same views again for intent CL: the reference encodes
    them twice, with fresh dropout."""
    views = batch["views"]
    return [batch["input"], views] if shared_views else [batch["input"], views, views]


def backbone_from(vocab_size: int, settings: dict, causal: bool = True) -> Backbone:
    fields = BackboneSettings.__dataclass_fields__
    return Backbone(vocab_size, BackboneSettings(**{k: v for k, v in settings.items() if k in fields}), causal)


@torch.no_grad()
def mean_pooled_users(backbone: Backbone, context: EpochContext) -> torch.Tensor:
    """Every training user encoded in eval mode, mean over all positions (padding included), as the
    reference's clustering step does. The caller's train/eval mode is restored."""
    was_training = backbone.training
    backbone.eval()
    pooled = encode_in_blocks(
        lambda block: backbone(block.to(context.device)).mean(dim=1), context.train_input, context.batch_size
    )
    backbone.train(was_training)
    return pooled


def encode_in_blocks(encode, inputs: torch.Tensor, block_size: int) -> torch.Tensor:
    """encode(inputs[i:i+block_size]) for every block, written into one preallocated tensor.

    Keeping a list of per-block results and concatenating them leaves small long-lived tensors
    between each block's large temporaries, and glibc's heap then grows by several MB per block:
    about 3.5 GB per million users, measured by the scale study; one output tensor does not.
    """
    pooled = None
    for start in range(0, len(inputs), block_size):
        block = encode(inputs[start : start + block_size])
        if pooled is None:
            pooled = torch.empty((len(inputs), *block.shape[1:]), dtype=block.dtype, device=block.device)
        pooled[start : start + len(block)] = block
    if pooled is None:
        raise ValueError("encode_in_blocks: no inputs")
    return pooled

"""BPR-MF (Rendle et al., 2009): user and item embeddings, the pairwise BPR loss with one sampled
negative per positive; order is ignored. Trained on the training interactions s_1..s_{n-2} of
each user, all of them (s_{n-1} and s_n are validation and test): a batch of users contributes
every one of their training items, each paired with a negative that is not in the user's whole
sequence. Scores are u . E^T over every vocabulary row.

The batch's `input` and `target` hold only the last max_len + 1 training items of a user (the
window the sequential models see), so the items come from `prepare` instead, and the negatives,
one per item, are drawn here with the batches' semantics (data/batches.py sample_negatives:
uniform over 1..vocab-1, redrawn while in the user's whole sequence).

The L2 term is the official one (NGCF/BPRMF.py:79-80, 85): `l2` times tf.nn.l2_loss, half the sum of
squares, of the triples' user, positive and negative embeddings, over the number of triples;
checked against the official code with tests/test_official_bprmf.py (docs/OFFICIAL.md).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.data.batches import ItemSets, sample_negatives
from elcrec.data.sequences import SequenceData
from elcrec.models.base import Batch, EpochContext, RecommenderModel
from elcrec.models.registry import register


def user_item_positions(offsets: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch row, position in the flat item array) of every item of `users`, row by row in time order."""
    starts = offsets[users]
    counts = offsets[users + 1] - starts
    rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
    first_of_row = torch.cumsum(counts, 0) - counts
    within = torch.arange(len(rows), device=users.device) - first_of_row[rows]
    return rows, starts[rows] + within


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator for one epoch's negatives, fixed by (run seed, epoch): a resumed run starts at an
    epoch boundary and so draws the same negatives as an uninterrupted one, with no state to save."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@register
class BPRMF(RecommenderModel):
    name = "bprmf"
    needs_users = True
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # official default, and the shared protocol's 64 dimensions
        # official: learning rate 0.01 with tf.train.RMSPropOptimizer (NGCF/BPRMF.py:58); ours with the
        # shared loop's Adam
        "lr": 0.01,
        # official: regs[0] times tf.nn.l2_loss (half the sum of squares) of the batch's user, positive
        # and negative embeddings, over the batch size
        "l2": 1e-5,
        "epochs": 500,  # official maximum; early stopping (patience 40 on valid NDCG@20) as for every model
        # official batches are 1024 (user, positive, negative) triples; ours are users with all their
        # training items: 128 users hold about 760 triples on the Amazon sets (6 training items each)
        "batch_size": 128,
    }

    def __init__(self, vocab_size: int, settings: dict, n_users: int) -> None:
        super().__init__()
        self.user_embedding = nn.Embedding(n_users, settings["hidden_size"])
        self.item_embedding = nn.Embedding(vocab_size, settings["hidden_size"])
        for embedding in (self.user_embedding, self.item_embedding):
            nn.init.normal_(embedding.weight, std=settings["init_std"])
        self.l2 = settings["l2"]
        self.negative_sets: ItemSets | None = None
        self.generator: torch.Generator | None = None

    def prepare(self, train_sequences: SequenceData) -> None:
        """Every user's training items, flat (user u's are train_items[train_offsets[u]:train_offsets[u+1]])."""
        if train_sequences.n_users != self.user_embedding.num_embeddings:
            raise ElcrecError(
                f"bprmf: {train_sequences.n_users} users' training items for a model of "
                f"{self.user_embedding.num_embeddings} users"
            )
        self.register_buffer("train_items", torch.from_numpy(train_sequences.items.astype(np.int64)), persistent=False)
        offsets = torch.from_numpy(train_sequences.offsets.astype(np.int64))
        self.register_buffer("train_offsets", offsets, persistent=False)

    def on_epoch_start(self, context: EpochContext) -> None:
        self.negative_sets = context.item_sets
        self.generator = epoch_generator(context.seed, context.epoch)

    def training_pairs(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch row, positive, negative) for every training interaction of the batch's users."""
        if not hasattr(self, "train_items"):
            raise ElcrecError("bprmf: prepare(train_sequences) must run before training")
        if self.negative_sets is None or self.generator is None:
            raise ElcrecError("bprmf: on_epoch_start needs the users' item sets (EpochContext.item_sets)")
        rows, positions = user_item_positions(self.train_offsets, users)
        positives = self.train_items[positions]
        owners = users[rows].cpu()
        negatives = sample_negatives(positives.cpu()[:, None], owners, self.negative_sets, self.generator)[:, 0]
        return rows, positives, negatives.to(positives.device)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        rows, positive_items, negative_items = self.training_pairs(batch["users"])
        users = self.user_embedding(batch["users"][rows])
        positives = self.item_embedding(positive_items)
        negatives = self.item_embedding(negative_items)
        margin = (users * positives).sum(-1) - (users * negatives).sum(-1)
        bpr = -functional.logsigmoid(margin).mean()
        # the official tf.nn.l2_loss is half the sum of squares (NGCF/BPRMF.py:79-80), over the batch size
        squares = users.pow(2).sum(-1) + positives.pow(2).sum(-1) + negatives.pow(2).sum(-1)
        l2 = self.l2 * squares.mean() / 2
        return {"bpr": bpr, "l2": l2, "total": bpr + l2}

    def score(self, batch: Batch) -> torch.Tensor:
        return self.user_embedding(batch["users"]) @ self.item_embedding.weight.T

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.user_embedding(batch["users"]), None

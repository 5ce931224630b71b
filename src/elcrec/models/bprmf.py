"""BPR-MF (Rendle et al., 2009): user and item embeddings, the pairwise BPR loss with one sampled
negative per positive; order is ignored. Trained on the training interactions s_1..s_{n-2} of
each user (s_{n-1} and s_n are validation and test). Scores are u . E^T over every vocabulary row.

By default the official loop (NGCF/BPRMF.py and utility/load_data.py; docs/OFFICIAL.md): each step
1,024 distinct users drawn afresh (`batch_unit: sampled-users`), each with one training item drawn
uniformly and one negative uniform over the real items 1..n, redrawn while among the user's
training items (`sampler: official`); glorot-uniform tables (`init: xavier`); TensorFlow 1's RMSProp
at lr 0.01 (`optimizer: rmsprop-tf1`, optimisation.py TF1RMSProp, with sparse table gradients as
TF's). Named departures (variant `adam-lr1e-3`): `sampler: all-items` (a batch of users contributes
every one of their training items, each with a negative outside the user's whole sequence, as the
batches' sample_negatives draws), `init: normal`, Adam. The official code picks its epoch on the test
set every 10 epochs; ours validates every epoch (the shared protocol).

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
from elcrec.optimisation import OPTIMIZERS


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


SAMPLERS = ("official", "all-items")


@register
class BPRMF(RecommenderModel):
    name = "bprmf"
    needs_users = True
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # official default, and the shared protocol's 64 dimensions
        "lr": 0.01,  # official, with tf.train.RMSPropOptimizer (NGCF/BPRMF.py:58)
        "optimizer": "rmsprop-tf1",
        "init": "xavier",  # official xavier_initializer (BPRMF.py:64-73); `normal`: N(0, init_std)
        "sampler": "official",  # load_data.py:144-183; `all-items`: every training item of a batch user
        # official: regs[0] times tf.nn.l2_loss (half the sum of squares) of the batch's user, positive
        # and negative embeddings, over the batch size
        "l2": 1e-5,
        "epochs": 500,  # official maximum; early stopping (patience 40 on valid NDCG@20) as for every model
        "batch_unit": "sampled-users",  # official: n_train // 1024 + 1 steps of 1,024 users drawn afresh
        "batch_size": 1024,
    }
    choices: ClassVar[dict] = {"optimizer": OPTIMIZERS, "init": ("xavier", "normal"), "sampler": SAMPLERS}

    def __init__(self, vocab_size: int, settings: dict, n_users: int) -> None:
        super().__init__()
        sparse = settings["optimizer"] == "rmsprop-tf1"  # row gradients, applied to their rows only, as TF's
        self.user_embedding = nn.Embedding(n_users, settings["hidden_size"], sparse=sparse)
        self.item_embedding = nn.Embedding(vocab_size, settings["hidden_size"], sparse=sparse)
        for embedding, rows in ((self.user_embedding, n_users), (self.item_embedding, vocab_size - 2)):
            if settings["init"] == "xavier":  # glorot uniform over the official table's rows (no padding, mask)
                bound = (6 / (rows + settings["hidden_size"])) ** 0.5
                nn.init.uniform_(embedding.weight, -bound, bound)
            else:
                nn.init.normal_(embedding.weight, std=settings["init_std"])
        self.l2 = settings["l2"]
        self.official_sampler = settings["sampler"] == "official"
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
        owners = torch.repeat_interleave(torch.arange(len(offsets) - 1), offsets.diff())
        keys = torch.sort(owners * self.item_embedding.num_embeddings + self.train_items).values
        self.register_buffer("train_keys", keys, persistent=False)  # each user's training items (ItemSets)

    def on_epoch_start(self, context: EpochContext) -> None:
        self.negative_sets = context.item_sets
        self.generator = epoch_generator(context.seed, context.epoch)

    def training_pairs(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch row, positive, negative) of the batch's users: one each (`sampler: official`) or every
        training interaction of each (`all-items`)."""
        if not hasattr(self, "train_items"):
            raise ElcrecError("bprmf: prepare(train_sequences) must run before training")
        if self.negative_sets is None or self.generator is None:
            raise ElcrecError("bprmf: on_epoch_start needs the users' item sets (EpochContext.item_sets)")
        if self.official_sampler:
            host_users = users.cpu()
            offsets = self.train_offsets.cpu()
            starts, counts = offsets[host_users], offsets[host_users + 1] - offsets[host_users]
            picks = torch.minimum((torch.rand(len(users), generator=self.generator) * counts).long(), counts - 1)
            positives = self.train_items.cpu()[starts + picks]
            training = ItemSets.of_keys(self.train_keys.cpu(), self.item_embedding.num_embeddings)
            high = self.item_embedding.num_embeddings - 1  # 1..n: the real items, not the mask row
            negatives = sample_negatives(positives[:, None], host_users, training, self.generator, high=high)[:, 0]
            rows = torch.arange(len(users), device=users.device)
            return rows, positives.to(users.device), negatives.to(users.device)
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

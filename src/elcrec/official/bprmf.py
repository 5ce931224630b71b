"""BPR-MF against the NGCF repository's TensorFlow baseline (NGCF/BPRMF.py; docs/OFFICIAL.md): our
model given the official seeded initialisation and one batch of the official sampler (16 users, one
positive and one negative each) on 20 users of the benchmark Beauty file; the BPR loss, the L2 term,
their total, both tables' gradients and the evaluation scores over every item.

The official ids are 0-based items; ours are 1-based with a padding row 0 and a mask row last,
which the official table lacks: they are loaded as zeros, get no gradient and are not compared as
scores. The official pairs are handed to our loss in place of our own pairing (every training item
of a batch user, each with a negative drawn by us), which is a draw, not a formula.
"""

from __future__ import annotations

import numpy as np
import torch

from elcrec.official.common import compare, official_gradients

CHECK = {
    "fixture": "bprmf_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "one step on the official seeded initialisation and one batch of its sampler (16 triples, 20 users of "
        "Beauty): BPR loss, L2 term, total; both tables' gradients; the scores of every item"
    ),
    "departures": "none switched off",
}
LOSSES = {"bpr": "loss/mf_loss", "l2": "loss/reg_loss", "total": "loss/loss"}
NAMES = {"user_embedding": "user_embedding.weight", "item_embedding": "item_embedding.weight"}
ITEM_TABLES = ("item_embedding",)  # official row r is our row r + 1


def rename(name: str) -> str:
    return NAMES[name]


def build_model(fixture: dict[str, np.ndarray]) -> torch.nn.Module:
    """Our BPR-MF with the official sizes and settings (parser.py defaults: 64 dims, regs[0] 1e-5),
    the official weights loaded strictly; the padding and mask rows zero."""
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    users, dims = fixture["weight/user_embedding"].shape
    items = fixture["weight/item_embedding"].shape[0]
    torch.manual_seed(0)
    model = build("bprmf", items + 2, model_defaults("bprmf") | {"hidden_size": dims, "l2": 1e-5}, n_users=users)
    item_table = torch.zeros(items + 2, dims)
    item_table[1 : items + 1] = torch.from_numpy(fixture["weight/item_embedding"])
    state = {
        "user_embedding.weight": torch.from_numpy(fixture["weight/user_embedding"]),
        "item_embedding.weight": item_table,
    }
    model.load_state_dict(state, strict=True)
    return model


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    model = build_model(fixture)
    model.eval().zero_grad()
    users = torch.from_numpy(fixture["users"])
    positives = torch.from_numpy(fixture["pos_items"]) + 1
    negatives = torch.from_numpy(fixture["neg_items"]) + 1
    # the official sampler's triples (one per batch user) in place of our own draw
    model.training_pairs = lambda batch_users: (torch.arange(len(batch_users)), positives, negatives)
    batch = {"users": users}
    losses = model.loss(batch)
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}
    gradients = {
        name: (rows + 1 if rows is not None and name == rename(ITEM_TABLES[0]) else rows, values)
        for name, (rows, values) in official_gradients(fixture, rename).items()
    }
    with torch.no_grad():
        scores = model.score(batch)[:, 1:-1]  # every official item; not the padding and mask rows
    return compare(losses, official, model, gradients, scores=(scores, fixture["scores"]))

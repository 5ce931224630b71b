"""BPR-MF against the NGCF repository's TensorFlow baseline (NGCF/BPRMF.py; docs/OFFICIAL.md): our
model given the official seeded initialisation and one batch of the official sampler (16 users, one
positive and one negative each) on 20 users of the benchmark Beauty file; the BPR loss, the L2 term,
their total, both tables' gradients and the evaluation scores over every item. Then the official
loop's optimiser: three steps of TensorFlow 1's RMSProp on three further batches of its sampler, from
the same initialisation, against ours (optimisation.py TF1RMSProp): the change of both tables over
the steps, compared as a gradient is (its tolerance against the largest change).

The official ids are 0-based items; ours are 1-based with a padding row 0 and a mask row last,
which the official table lacks: they are loaded as zeros, get no gradient and are not compared as
scores. The official pairs are handed to our loss in place of our own pairing (every training item
of a batch user, each with a negative drawn by us), which is a draw, not a formula.
"""

from __future__ import annotations

import numpy as np
import torch

from elcrec.official import GRADIENT_FLOOR, GRADIENT_SHARE
from elcrec.official.common import compare, official_gradients

CHECK = {
    "fixture": "bprmf_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "one step on the official seeded initialisation and one batch of its sampler (16 triples, 20 users of "
        "Beauty): BPR loss, L2 term, total; both tables' gradients; the scores of every item; then 3 steps "
        "of its RMSProp (TF1) on 3 more batches: both tables after them"
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
    result = compare(losses, official, model, gradients, scores=(scores, fixture["scores"]))
    optimiser = rmsprop_steps(fixture, record)
    return result | {"optimiser": optimiser, "within_tolerance": result["within_tolerance"] and optimiser["within"]}


def rmsprop_steps(fixture: dict[str, np.ndarray], record: dict) -> dict:
    """Our model and TF1RMSProp (lr as the record's) through the official steps' batches: the largest
    difference of the tables' change from the official change, and whether it is within tolerance."""
    from elcrec.optimisation import TF1RMSProp

    model = build_model(fixture)
    model.train()
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    optimizer = TF1RMSProp(model.parameters(), lr=record["settings"]["lr"])
    steps = sorted({key.split("/")[1] for key in fixture if key.startswith("rmsprop/") and "after" not in key})
    for step in steps:
        positives = torch.from_numpy(fixture[f"rmsprop/{step}/pos_items"]) + 1
        negatives = torch.from_numpy(fixture[f"rmsprop/{step}/neg_items"]) + 1
        model.training_pairs = lambda users, p=positives, n=negatives: (torch.arange(len(users)), p, n)
        optimizer.zero_grad(set_to_none=True)
        model.loss({"users": torch.from_numpy(fixture[f"rmsprop/{step}/users"])})["total"].backward()
        optimizer.step()
    tables = {}
    for theirs, ours in NAMES.items():
        after, start = dict(model.named_parameters())[ours].detach(), before[ours]
        official = torch.from_numpy(fixture[f"rmsprop/after/{theirs}"]) - torch.from_numpy(fixture[f"weight/{theirs}"])
        change = after - start
        if theirs in ITEM_TABLES:  # the padding and mask rows: no official row, no change
            stray = float(torch.cat([change[:1], change[-1:]]).abs().max())
            change = change[1:-1]
        else:
            stray = 0.0
        difference = max(float((change - official).abs().max()), stray)
        largest = float(official.abs().max())
        tables[ours] = {"difference": difference, "largest": largest}
    within = all(entry["difference"] <= GRADIENT_SHARE * entry["largest"] + GRADIENT_FLOOR for entry in tables.values())
    return {"steps": len(steps), "tables": tables, "within": within}

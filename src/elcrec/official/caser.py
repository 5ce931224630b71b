"""Caser's training step and scores against graytowne/caser_pytorch (docs/OFFICIAL.md "Caser"): our
model with the official seeded initialisation (in the fixture), on the official training windows of
six users of the benchmark Beauty.txt, with the official negatives and dropout masks.

The official code trains on windows (a sequence of L items, the user, T targets, 3 negatives); ours
on users, each row its left-padded training items, and builds the windows itself. The fixture holds
both: each user's training items with one negative under each target position (what our batch is
made of) and the official minibatch. Each official window is known by its user and by how many
items before the user's last it ends (`window_offset`); ours too (its row and start column), so the
check pairs them, hands our dropout the official mask of the same window, and verifies that our
model builds exactly the official examples (sequence, user, targets, negatives) before comparing.

Our item tables have one row more (the mask id, vocab = items + 2; the official num_items is
items + 1): it keeps our own initialisation, is not scored by the official code, and must get no
gradient (its gradients are compared as rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.official.common import compare, official_gradients, official_state

CHECK = {
    "fixture": "caser_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "one training step of the official fit on the seeded initialisation (d 16, L 5, T 3, nv 4, nh 16), "
        "6 Beauty users' 14 windows, the same negatives and dropout masks: positive and negative BCE, the total; "
        "every gradient; the full eval score matrix"
    ),
    "departures": "none switched off",
}
LOSSES = {"positive": "loss/positive_loss", "negative": "loss/negative_loss", "total": "loss/loss"}
NAMES = {
    "user_embeddings": "user_embedding",
    "item_embeddings": "item_embedding",
    "conv_v": "vertical",
    "conv_h": "horizontal",
    "fc1": "fully_connected",
    "W2": "output_weights",
    "b2": "output_bias",
}
ITEM_TABLES = ("item_embedding.weight", "output_weights.weight", "output_bias.weight")  # + the mask id row
MAX_LEN = 50  # our batch width (the protocol's max_len)


def rename(name: str) -> str:
    """Official parameter name -> ours (conv_h.3.weight -> horizontal.3.weight)."""
    module, _, rest = name.partition(".")
    if module not in NAMES:
        raise ElcrecError(f"caser: unexpected official parameter {name!r}")
    return f"{NAMES[module]}.{rest}"


def with_official_weights(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    """Our Caser with the official settings and its seeded initialisation, loaded strictly."""
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    official = record["model_args"]
    settings = model_defaults("caser") | {
        "hidden_size": official["d"],
        "window": official["L"],
        "targets": record["config"]["T"],
        "vertical_filters": official["nv"],
        "horizontal_filters": official["nh"],
        "dropout": official["drop"],
    }
    if (official["ac_conv"], official["ac_fc"]) != ("relu", "relu") or record["config"]["neg_samples"] != 3:
        raise ElcrecError("caser: ours has ReLU activations and one negative per target (3)")
    state = official_state(fixture, rename)
    items = len(state["item_embedding.weight"])  # official num_items: items + 1 (0 = padding)
    torch.manual_seed(0)
    model = build("caser", items + 1, settings, n_users=len(state["user_embedding.weight"]))
    own = model.state_dict()
    for name in ITEM_TABLES:  # the mask id's row: ours
        state[name] = torch.cat([state[name], own[name][items:]])
    model.load_state_dict(state, strict=True)
    return model


def left_padded(rows: torch.Tensor, width: int = MAX_LEN) -> torch.Tensor:
    return functional.pad(rows, (width - rows.shape[1], 0))


def our_batches(fixture: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(training batch, evaluation batch) in our layout: each user's training items s_1..s_m
    (right-aligned in the fixture) as inputs s_1..s_{m-1} and targets s_2..s_m, the negative drawn
    for each target under it; evaluation input: the training items (the validation input)."""
    items = torch.from_numpy(fixture["train_items"])
    negatives = torch.from_numpy(fixture["position_negatives"])
    users = torch.from_numpy(fixture["users"])
    train = {
        "users": users,
        "input": left_padded(items[:, :-1]),
        "target": left_padded(items[:, 1:]),
        "negative": left_padded(negatives[:, 1:]),
    }
    return train, {"users": users, "input": left_padded(items)}


def official_order(model: torch.nn.Module, batch: dict, fixture: dict[str, np.ndarray]) -> torch.Tensor:
    """For each of our windows (in the order our loss builds them), the official window it is:
    the same user, ending the same number of items before the user's last training item."""
    from elcrec.models.base import training_items
    from elcrec.models.caser import sliding_windows

    items = training_items(batch)
    size = model.window + model.targets
    rows, starts = sliding_windows(items, size)
    offsets = items.shape[1] - size - starts
    official = {
        (int(user), int(offset)): index
        for index, (user, offset) in enumerate(zip(fixture["window_user"], fixture["window_offset"], strict=True))
    }
    ours = [(int(batch["users"][row]), int(offset)) for row, offset in zip(rows, offsets, strict=True)]
    if sorted(ours) != sorted(official):
        raise ElcrecError(f"caser: our windows {sorted(ours)} are not the official ones {sorted(official)}")
    return torch.tensor([official[key] for key in ours])


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our scores (eval mode), then one training step (train mode, the official dropout masks) on the
    official windows, compared with the official numbers."""
    train, evaluation = our_batches(fixture)
    model.eval()
    with torch.no_grad():
        scores = model.score(evaluation)[:, : fixture["scores"].shape[1]]  # official ids 0..items
    order = official_order(model, train, fixture)
    mask = torch.from_numpy(fixture["dropout_mask"])[order]
    if float(mask.max()) != 1 / (1 - model.dropout.p):  # the official mask is 0 or 1 / (1 - drop)
        raise ElcrecError(f"caser: our dropout {model.dropout.p} is not the official one")
    seen = {}

    def official_mask(module, inputs, output):
        if module.training:
            if inputs[0].shape != mask.shape:
                raise ElcrecError(f"caser: dropout over {tuple(inputs[0].shape)}, the official {tuple(mask.shape)}")
            return inputs[0] * mask

    represent, item_logits = model.represent, model.item_logits

    def recorded_represent(recent, users):
        seen["sequences"], seen["users"] = recent, users
        return represent(recent, users)

    def recorded_item_logits(x, items):
        seen.setdefault("items", []).append(items)
        return item_logits(x, items)

    hook = model.dropout.register_forward_hook(official_mask)
    model.represent, model.item_logits = recorded_represent, recorded_item_logits
    try:
        model.train().zero_grad()
        losses = model.loss(train)
    finally:
        hook.remove()
        del model.represent, model.item_logits
    examples = {
        "batch_sequences": seen["sequences"],
        "batch_users": seen["users"][:, None],
        "batch_targets": seen["items"][0],
        "batch_negatives": seen["items"][1],
    }
    same = all(torch.equal(ours, torch.from_numpy(fixture[key])[order]) for key, ours in examples.items())
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}
    result = compare(losses, official, model, official_gradients(fixture, rename), scores=(scores, fixture["scores"]))
    return result | {"examples_equal": same, "within_tolerance": result["within_tolerance"] and same}


def check(fixture: dict[str, np.ndarray], record: dict, weights: Path | None, sequences=None, attributes=None) -> dict:
    return differences(with_official_weights(fixture, record), fixture)

"""GRU4Rec against the code the paper's Table 12 names (slientGe/Sequential_Recommendation_Tensorflow,
models/GRU4Rec, TensorFlow 1; docs/OFFICIAL.md): our model with the official seeded initialisation
(in the fixture) on the official first batch of 16 windows and its 10 negatives each: the per-window
BPR summed over the batch, every gradient and their global norm (what the official loop clips to 5),
and the scores of the official test windows. Before that, our `windows` batches of the fixture's
users must be exactly the official make_datasets windows.

The official ids are ours (1-based, 0 = padding); our item tables have one row more (the mask id,
last), kept at our own initialisation, not scored, and given no gradient. The official prediction is
the sigmoid of the scores; ours are the scores, so their sigmoid is compared.
"""

from __future__ import annotations

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.official.common import compare, official_gradients, official_state

CHECK = {
    "fixture": "gru4rec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "its make_datasets windows against our windows batches (24 users); one step on the official seeded "
        "initialisation (d 16, window 5), its first batch of 16 windows with its 10 negatives each: the BPR "
        "total, the 7 gradients and their global norm; the scores of its 24 test windows"
    ),
    "departures": "none switched off",
}
CELL = "gru4rec/rnn/multi_rnn_cell/cell_0/gru_cell/"
NAMES = {
    "gru4rec/item_emb": "item_embedding.weight",
    "gru4rec/W": "output_weights.weight",
    "gru4rec/b": "output_bias.weight",
    f"{CELL}gates/kernel": "gru.gate_kernel",
    f"{CELL}gates/bias": "gru.gate_bias",
    f"{CELL}candidate/kernel": "gru.candidate_kernel",
    f"{CELL}candidate/bias": "gru.candidate_bias",
}
ITEM_TABLES = ("item_embedding.weight", "output_weights.weight", "output_bias.weight")  # + the mask id row


def rename(name: str) -> str:
    if name not in NAMES:
        raise ElcrecError(f"gru4rec: unexpected official variable {name!r}")
    return NAMES[name]


def with_official_weights(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    """Our GRU4Rec with the official sizes and its seeded initialisation, loaded strictly."""
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    official = record["settings"]
    settings = model_defaults("gru4rec") | {"hidden_size": official["emb_size"], "window": official["len_Seq"]}
    state = official_state(fixture, rename)
    items = len(state["item_embedding.weight"])  # official num_item: items + 1 (0 = padding)
    torch.manual_seed(0)
    model = build("gru4rec", items + 1, settings)
    own = model.state_dict()
    for name in ITEM_TABLES:  # the mask id's row: ours
        state[name] = torch.cat([state[name], own[name][items:]])
    model.load_state_dict(state, strict=True)
    return model


def user_sequences(fixture: dict[str, np.ndarray]) -> list[list[int]]:
    offsets = fixture["sequence_offsets"]
    return [fixture["sequences"][start:end].tolist() for start, end in zip(offsets[:-1], offsets[1:], strict=True)]


def our_windows(fixture: dict[str, np.ndarray], window: int) -> set[tuple]:
    """Every (user, window items, target) our `windows` unit makes of the fixture's users: each user's
    official training items, then its official test item as our validation item (and a test item)."""
    from elcrec.data.batches import TrainingData, training_batches
    from elcrec.data.sequences import SequenceData

    users = user_sequences(fixture)
    data = SequenceData.from_sequences([np.array([*items, items[0]]) for items in users])
    training = TrainingData.of(data.split(max_len=50))
    generator = torch.Generator().manual_seed(0)
    made = set()
    for batch in training_batches(training, 7, generator, unit="windows", window=window, negatives=1):
        for user, items, target in zip(batch["users"], batch["input"], batch["target"][:, 0], strict=True):
            made.add((int(user) + 1, tuple(items.tolist()), int(target)))  # official users are 1-based
    return made


def official_windows(fixture: dict[str, np.ndarray]) -> set[tuple]:
    return {
        (int(user), tuple(items.tolist()), int(target))
        for user, items, target in zip(
            fixture["windows/user"], fixture["windows/seq"], fixture["windows/target"], strict=True
        )
    }


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    window = record["settings"]["len_Seq"]
    ours, theirs = our_windows(fixture, window), official_windows(fixture)
    windows_equal = ours == theirs and len(theirs) == len(fixture["windows/target"])
    model = with_official_weights(fixture, record)
    model.eval().zero_grad()
    batch = {
        "input": torch.from_numpy(fixture["batch/seq"]),
        "target": torch.from_numpy(fixture["batch/pos"]),
        "negatives": torch.from_numpy(fixture["batch/neg"]),
    }
    losses = model.loss(batch)
    with torch.no_grad():
        scores = torch.sigmoid(model.score({"input": torch.from_numpy(fixture["test/seq"])}))[:, :-1]
    gradients = official_gradients(fixture, rename)
    for name in ITEM_TABLES:  # the official tables lack the mask row: its gradient must be 0
        _, values = gradients[name]
        gradients[name] = (None, torch.cat([values, torch.zeros_like(values[:1])]))
    result = compare(
        {"total": losses["total"]},  # BPR is the loss's only term
        {"total": float(fixture["loss/total"])},
        model,
        gradients,
        scores=(scores, fixture["test/scores"]),
    )
    norm = float(torch.sqrt(sum((parameter.grad**2).sum() for parameter in model.parameters())))
    official_norm = float(fixture["global_norm"])
    norm_within = abs(norm - official_norm) <= 1e-5 * official_norm + 1e-6
    return result | {
        "windows": {"ours": len(ours), "official": len(theirs), "equal": windows_equal},
        "global_norm": {"ours": norm, "official": official_norm},
        "within_tolerance": result["within_tolerance"] and windows_equal and norm_within,
    }

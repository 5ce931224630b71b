"""MAERec's training step and scores against HKUDS/MAERec (docs/OFFICIAL.md "MAERec"): our model with
the official model's seeded initialisation (in the fixture) on a tiny item graph (8 users, 40 items),
one training step with every random draw the official step made, and the scores of 8 test users over
every item (the full graph).

The official step's randomness is handed to our `MAERec.loss` as it runs: our models/maerec.py draws
through its module's `torch` (rand, randperm, randint) and `sample_negatives`, which `replayed`
replaces for the call by the official draws, in the order our code asks for them, each translated
to our layout:
- LocalGraph's edge dropout (model.py:13-17: kept where floor(U + p) = 1, i.e. U >= 1 - p): for each
  of our edges at that step, 1 - U of the same edge (ours keeps where the draw < p), so both keep
  the same edges; the edges differ only in order (the official order is scipy's, ours coalesced);
- the Gumbel uniforms (model.py:243), one per item row, as they are;
- RandomMaskSubgraphs' permutations of the reached ids (model.py:311): both sides permute the same
  sorted unique ids, so as they are;
- sample_pos_edges' permutation of the masked edges (main.py:81): the permutation of our masked
  edges (which are the official ones in our order) that gives the official positives in their order;
- sample_neg_edges' negatives (main.py:83-101): our reconstruction_negatives draws the random ends
  [edges, 40] at once, (u, random) first, then (random, v): the official random ends;
- the next-item negatives (handler.py:12-16, 83-90): the official ones, after checking they are
  what our sampler may draw (1..items-1, not in the user's training sequence, 0 at padding).

The official item table has items + 1 rows (0 = padding, handler.py:66); ours has items + 2 (the
mask id last). Its row is 0 here: MAERec never reads it (no input, target or negative is the mask
id, it has no edge in the item graph and no seed score), so it adds nothing to any loss, and its
gradient must be 0 (the fixture stores the official table's gradient by its rows, and `compare`
checks that nothing is elsewhere). Our scores' columns 1..items are compared (the official test
loop scores the real items).

One departure is switched off (`swallowed_rows`): on the rows of items with no edge but their loop,
the official step's float32 sum loses the item table's gradient (0 there); ours, exact, is compared
on those rows with the official gradient of the three other terms (a diagnostic in the fixture).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.official import GRADIENT_FLOOR, GRADIENT_SHARE
from elcrec.official.common import compare, official_gradients, official_state

LOSSES = {
    "next_item": "loss/loss_main",
    "reconstruction": "loss/loss_reco",
    "regularisation": "loss/loss_regu",
    "mask": "loss/loss_mask",
    "total": "loss/loss",
}
# our settings <- the official arguments the fixture's json records (params.py); the rest our defaults
ARGUMENTS = {
    "hidden_size": "latdim",
    "max_len": "max_seq_len",
    "heads": "num_attention_heads",
    "layers": "num_trm_layers",
    "gcn_layers": "num_gcn_layers",
    "mask_depth": "mask_depth",
    "path_prob": "path_prob",
    "mask_candidates": "num_mask_cand",
    "mask_steps": "mask_steps",
    "reconstruction_edges": "con_batch",
    "reconstruction_negatives": "num_reco_neg",
    "reward_eps": "eps",
    "reg": "reg",
    "dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
}
RENAMED = [  # official name (regular expression) -> ours
    (r"^encoder\.item_emb$", "item_embedding"),
    (r"^decoder\.MLP\.", "decoder.mlp."),
    (r"^recommender\.pos_emb$", "transformer.position_embedding"),
    (r"^recommender\.LayerNorm\.", "transformer.embedding_norm."),
    (r"^recommender\.layers\.(\d+)\.attention\.(query|key|value)\.", r"transformer.attention.\1.\2."),
    (r"^recommender\.layers\.(\d+)\.attention\.dense\.", r"transformer.attention.\1.output."),
    (r"^recommender\.layers\.(\d+)\.attention\.LayerNorm\.", r"transformer.attention.\1.norm."),
    (r"^recommender\.layers\.(\d+)\.intermediate\.layers\.0\.", r"transformer.feed_forward.\1.expand."),
    (r"^recommender\.layers\.(\d+)\.intermediate\.layers\.2\.", r"transformer.feed_forward.\1.contract."),
    (r"^recommender\.layers\.(\d+)\.intermediate\.layers\.4\.", r"transformer.feed_forward.\1.norm."),
]


def rename(name: str) -> str:
    """An official parameter name -> ours."""
    for pattern, ours in RENAMED:
        if re.search(pattern, name):
            return re.sub(pattern, ours, name)
    raise KeyError(f"maerec: no name of ours for the official parameter {name!r}")


def settings(record: dict) -> dict:
    """Our MAERec's settings: the defaults, with the official arguments of the fixture's run."""
    from elcrec.settings import model_defaults

    arguments = record["official_args"]
    sizes = {ours: arguments[theirs] for ours, theirs in ARGUMENTS.items()}
    # IntermediateLayer's 4 * latdim (model.py:228); the official graph's distance (README.md)
    return model_defaults("maerec") | sizes | {"inner_size": 4 * arguments["latdim"], "graph_distance": 3}


def training_sequences(fixture: dict[str, np.ndarray]):
    """The official `seq`: every user's training part s_1..s_{n-2}, the sequences our graph is built from."""
    from elcrec.data.sequences import SequenceData

    ends = np.cumsum(fixture["data/train_lengths"])
    return SequenceData.from_sequences(np.split(fixture["data/train_items"], ends[:-1]))


def with_official_weights(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    """Our MAERec at the fixture's size over its item graph, the official initialisation loaded
    strictly (the mask id's row, which the official table lacks, 0)."""
    from elcrec.models.registry import build

    vocab = record["official_args"]["item"] + 1  # the official items + 1 rows, and the mask id
    torch.manual_seed(0)
    model = build("maerec", vocab, settings(record))
    model.prepare(training_sequences(fixture))
    state = official_state(fixture, rename)
    table = state["item_embedding"]
    state["item_embedding"] = torch.cat([table, table.new_zeros(1, table.shape[1])])
    model.load_state_dict(state, strict=True)
    return model


def _keys(rows: torch.Tensor, cols: torch.Tensor, size: int) -> torch.Tensor:
    return rows * size + cols


def _positions(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> torch.Tensor:
    """Where each of `ours` (edge keys) is in `theirs`; both must hold the same keys."""
    order = torch.argsort(theirs)
    found = order[torch.searchsorted(theirs[order], ours).clamp(max=len(theirs) - 1)]
    if len(ours) != len(theirs) or not torch.equal(theirs[found], ours):
        raise ElcrecError(f"maerec: {what}: our edges are not the official ones ({len(ours)} vs {len(theirs)})")
    return found


class _Draws:
    """Our maerec module's `torch` during the replayed step: every attribute is torch's, but rand,
    randperm and randint hand out the official draws in turn (each a tensor, or a function of our
    model's state made when our code asks), checking that our code asks for what the official
    code drew."""

    def __init__(self, queue: list[tuple[str, tuple, object]]) -> None:
        self.queue = queue

    def __getattr__(self, name: str):
        return getattr(torch, name)

    def _next(self, kind: str, shape: tuple) -> torch.Tensor:
        if not self.queue:
            raise ElcrecError(f"maerec: our step draws more than the official one (a further {kind} {shape})")
        expected, expected_shape, value = self.queue.pop(0)
        value = value() if callable(value) else value
        if (kind, tuple(shape)) != (expected, tuple(expected_shape)):
            raise ElcrecError(
                f"maerec: our step draws {kind} {tuple(shape)} where the official drew {expected} {expected_shape}"
            )
        return value.clone()

    def rand(self, *shape, device=None, **_) -> torch.Tensor:
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return self._next("rand", shape)

    def randperm(self, count: int, device=None, **_) -> torch.Tensor:
        return self._next("randperm", (count,))

    def randint(self, low: int, high: int, size, device=None, **_) -> torch.Tensor:
        drawn = self._next("randint", tuple(size))
        if low != 1 or bool(((drawn < low) | (drawn >= high)).any()):
            raise ElcrecError(f"maerec: the official reconstruction negatives are outside our range {low}..{high - 1}")
        return drawn


def official_draws(model, fixture: dict[str, np.ndarray]) -> list[tuple[str, tuple, object]]:
    """The official step's draws, in the order and the layout our `MAERec.loss` asks for them."""
    size = model.vocab_size
    rows, cols = model.graph_rows, model.graph_cols
    ours = _keys(rows, cols, size)
    official = torch.from_numpy(fixture["graph/indices"])
    _positions(ours, _keys(official[0], official[1], size), "the item graph")
    queue = []
    for step in range(model.mask_depth):
        edges = torch.from_numpy(fixture[f"draw/dropout_edges/{step}"])
        theirs = _keys(edges[0], edges[1], size)
        present = torch.isin(ours, theirs)  # our edges at this step, in our order
        where = _positions(ours[present], theirs, f"edge dropout {step}")
        uniform = torch.from_numpy(fixture[f"draw/dropout_uniform/{step}"])
        queue.append(("rand", (int(present.sum()),), 1 - uniform[where]))
    gumbel = torch.from_numpy(fixture["draw/gumbel_uniform"])
    queue.append(("rand", tuple(gumbel.shape), gumbel))
    for step in range(model.mask_depth - 1):
        permutation = torch.from_numpy(fixture[f"draw/masker_perm/{step}"])
        queue.append(("randperm", tuple(permutation.shape), permutation))
    official_masked = torch.from_numpy(fixture["masker/masked_edge"])
    permutation = torch.from_numpy(fixture["draw/positive_perm"])

    def positive_order() -> torch.Tensor:
        """sample_pos_edges' permutation of the official masked edges, as one of ours (same edges)."""
        ours = _keys(model.masked_edges[:, 0], model.masked_edges[:, 1], size)
        theirs = _keys(official_masked[:, 0], official_masked[:, 1], size)
        return _positions(theirs, ours, "masked paths")[permutation]

    queue.append(("randperm", tuple(permutation.shape), positive_order))
    negatives = torch.from_numpy(fixture["draw/reconstruction_negatives"])
    half = negatives.shape[1] // 2
    queue.append(
        ("randint", (len(negatives), 2 * half), torch.cat([negatives[:, :half, 1], negatives[:, half:, 0]], 1))
    )
    return queue


@contextmanager
def replayed(model, fixture: dict[str, np.ndarray]):
    """Our maerec module draws the official step's randomness while the block runs (one step)."""
    import elcrec.models.maerec as ours

    negatives = torch.from_numpy(fixture["batch/neg"])

    def next_item_negatives(inputs, users, item_sets, generator, high=None):
        valid = inputs > 0
        allowed = (
            (negatives >= 1) & (negatives < high) & ~item_sets.contains(users[:, None].expand_as(inputs), negatives)
        )
        if not bool(allowed[valid].all()) or bool(negatives[~valid].any()):
            raise ElcrecError("maerec: the official next-item negatives are not what our sampler may draw")
        return negatives.clone()

    draws = _Draws(official_draws(model, fixture))
    saved = ours.torch, ours.sample_negatives
    ours.torch, ours.sample_negatives = draws, next_item_negatives
    try:
        yield
    finally:
        ours.torch, ours.sample_negatives = saved
    if draws.queue:
        raise ElcrecError(f"maerec: our step left {len(draws.queue)} of the official draws unused")


def our_batch(fixture: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The official batch (main.py:121-122) in our layout, which is the same (left-padded inputs, the
    next item at every position); its negatives our loss draws (`next_item_negatives: official`)."""
    return {
        "users": torch.from_numpy(fixture["batch/users"]),
        "input": torch.from_numpy(fixture["batch/seq"]),
        "target": torch.from_numpy(fixture["batch/pos"]),
    }


def swallowed_rows(model, fixture: dict[str, np.ndarray]) -> torch.Tensor:
    """The departure switched off: rows of the item table whose official gradient is 0 although the
    item is in the loss, because the official float32 sum lost it (docs/OFFICIAL.md "MAERec").

    An item with no edge in the training graph but its self-loop (the padding row; items seen only in
    validation or test) has a neighbourhood sum of exactly 0 in LocalGraph (model.py:249: A E - E),
    so F.normalize's eps (1e-12) and the 1e-8 of model.py:261 carry ~1e10 gradients into its row
    through A E and through -E, which cancel exactly; the official code's autograd adds the next-item,
    reconstruction and L2 gradients of that row between the two (ours adds them after), so in float32
    they vanish: the row's gradient is 0 (which rows, depends on the step's edge draws). Mathematically
    its seed score does not depend on its embedding, so the gradient is that of the other three terms,
    which the fixture holds (`diagnostic/grad_without_mask/...`, the official autograd on the
    official step) and against which ours is compared on those rows."""
    rows = torch.from_numpy(fixture["grad_rows/encoder.item_emb"])
    size = model.vocab_size - 1  # the official rows 0..items
    isolated = torch.bincount(model.graph_rows, minlength=model.vocab_size)[:size] == 1
    zero = torch.ones(size, dtype=torch.bool)
    zero[rows] = False
    return torch.nonzero(isolated & zero)[:, 0]


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray], switch_off: bool = True) -> dict:
    """Our MAERec in eval mode (dropout off, as the fixture's step) on the official step's batch and
    draws: the four losses and the total, every gradient after our total's backward, and the scores
    of the fixture's test users over the real items. With `switch_off`, on the rows `swallowed_rows`
    names our item table's gradient is compared with the official gradient without the masker loss
    instead (and set to the official 0 before `compare`, which compares all the rest)."""
    model.eval().zero_grad()  # freshly prepared: its first step is a masking step (main.py:117)
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}
    with replayed(model, fixture):
        losses = model.loss(our_batch(fixture))
    with torch.no_grad():
        scores = model.score({"input": torch.from_numpy(fixture["scores/input"])})
    items = fixture["scores"].shape[1]
    gradients = official_gradients(fixture, rename)
    if not switch_off:
        return compare(losses, official, model, gradients, scores=(scores[:, 1 : items + 1], fixture["scores"]))
    swallowed, kept = swallowed_rows(model, fixture), {}

    def switched_off(grad: torch.Tensor) -> torch.Tensor:
        kept["rows"] = grad[swallowed].clone()
        grad = grad.clone()
        grad[swallowed] = 0.0
        return grad

    handle = model.item_embedding.register_hook(switched_off)
    try:
        result = compare(losses, official, model, gradients, scores=(scores[:, 1 : items + 1], fixture["scores"]))
    finally:
        handle.remove()
    theirs = torch.from_numpy(fixture["diagnostic/grad_without_mask/encoder.item_emb"])[swallowed]
    difference = float((kept["rows"] - theirs).abs().max()) if len(swallowed) else 0.0
    largest = float(theirs.abs().max()) if len(swallowed) else 0.0
    within = difference <= GRADIENT_SHARE * largest + GRADIENT_FLOOR
    result["switched_off"] = {
        "item_embedding rows": swallowed.tolist(),
        "official": "0 (swallowed in float32)",
        "ours against the official gradient without the masker loss": {
            "difference": difference,
            "largest": largest,
            "within": within,
        },
    }
    result["within_tolerance"] = result["within_tolerance"] and within
    return result


def check(fixture: dict[str, np.ndarray], record: dict, weights: Path | None = None, sequences=None, attributes=None):
    return differences(with_official_weights(fixture, record), fixture)


CHECK = {
    "fixture": "maerec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "one training step on a tiny item graph (8 users, 40 items, the official seeded initialisation, eval "
        "mode) with every official draw replayed (edge dropout, Gumbel noise, path masking, positives, "
        "reconstruction and next-item negatives): next-item BCE, reconstruction, L2, masker loss, the total; "
        "every gradient; the scores of 8 test users over every item (the full graph)"
    ),
    "departures": (
        "switched off: the item table's gradient on the rows the official float32 sum swallows (items with no "
        "edge but their self-loop, whose 1e10 seed-score gradients cancel around the other terms: 0 officially, "
        "model.py:249, 261-262), compared with the official gradient without the masker loss instead"
    ),
}

"""DCRec's training step and scores against HKUDS/DCRec (docs/OFFICIAL.md "DCRec"): our model with the
official model's seeded initialisation (in the fixture) on the fixture's batch of 16 prefix examples of
10 users, and the full score matrix of 8 evaluation users, every random draw the official step made
handed to ours: the dropped edges of each GCN call and the KL prior's normal draws
(models/dcrec.py `DROPPED`, `WEIGHT_PRIOR`).

Our graphs are those our `prepare` builds from the users' training sequences (the fixture's official
test histories, s_1..s_{n-2}); they are compared with the official DGL graphs (`graph_differences`).
One departure is switched off: the official similarity graph (run_DCRec.py:121-146) gives every row
sim_group + 1 edges picked by np.argpartition, so a row with fewer nonzero similarities (the padding
row, the mask row, an item no training user has) gets zero-weight edges to columns argpartition picks
among equal zeros -- which depend on numpy's selection algorithm, not on the data. They carry nothing,
but DGL's GraphConv(norm="both") counts them in those columns' in-degrees and so scales every other
edge into them. Ours keeps only the rows' out-degrees (models/dcrec.py `similarity_graph`). The check
therefore runs our model on the official similarity graphs (the fixture's edge lists, zero-weight edges
included: `official_edge_list`) after checking that their nonzero edges are ours; `with_our_graphs`
runs it on ours, to measure the departure.

Two official parameters have no counterpart: CLLayer's projection fc1, fc2 (layers.py:34-35), which
`vanilla_loss` never uses (their official gradient is zero, checked); the official position table has
MAX_ITEM_LIST_LENGTH + 1 rows, the last never used, so ours is built with max_len one longer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from elcrec.official.common import compare, official_gradients, official_state

LOSSES = {"next_item": "loss/ce", "graph_cl": "loss/graph_cl", "kl": "loss/kl", "total": "loss/total"}
TRAIN_GRAPHS = {"adjacency": "train_adjacency", "similarity": "train_similarity", "augmented": "train_augmented"}
EVAL_GRAPHS = {"adjacency": "eval_adjacency", "similarity": "eval_similarity"}
GRAPH_NAMES = ("train_adjacency", "train_similarity", "eval_adjacency", "eval_similarity")  # ours = the fixture's
UNUSED = ("contrastive_learning_layer.fc1.", "contrastive_learning_layer.fc2.")  # layers.py:34-35
RENAMED = [  # official name (regular expression) -> ours
    (r"^item_embedding\.", "backbone.item_embedding."),
    (r"^position_embedding\.", "backbone.position_embedding."),
    (r"^LayerNorm\.", "backbone.embedding_norm."),
    (r"^trm_encoder\.layer\.(\d+)\.multi_head_attention\.(query|key|value)\.", r"backbone.blocks.\1.attention.\2."),
    (r"^trm_encoder\.layer\.(\d+)\.multi_head_attention\.dense\.", r"backbone.blocks.\1.attention.output."),
    (r"^trm_encoder\.layer\.(\d+)\.multi_head_attention\.LayerNorm\.", r"backbone.blocks.\1.attention.norm."),
    (r"^trm_encoder\.layer\.(\d+)\.feed_forward\.dense_1\.", r"backbone.blocks.\1.feed_forward.expand."),
    (r"^trm_encoder\.layer\.(\d+)\.feed_forward\.dense_2\.", r"backbone.blocks.\1.feed_forward.contract."),
    (r"^trm_encoder\.layer\.(\d+)\.feed_forward\.LayerNorm\.", r"backbone.blocks.\1.feed_forward.norm."),
    (r"^layernorm\.", "graph_norm."),
    (r"^attn_weights$", "fusion_weights"),
    (r"^attn$", "fusion_query"),
]


def rename(name: str) -> str:
    """An official parameter name -> ours."""
    for pattern, ours in RENAMED:
        if re.search(pattern, name):
            return re.sub(pattern, ours, name)
    raise KeyError(f"dcrec: no name of ours for the official parameter {name!r}")


def used(fixture: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fixture without the two unused projections (their official gradient must be zero)."""
    for key in fixture:
        if key.startswith("grad/") and key.removeprefix("grad/").startswith(UNUSED) and np.any(fixture[key]):
            raise AssertionError(f"dcrec: the unused official {key} has a nonzero gradient")
    return {key: value for key, value in fixture.items() if not key.split("/", 1)[-1].startswith(UNUSED)}


def settings(record: dict) -> dict:
    """Our DCRec's settings: our defaults (the official Beauty ones) at the fixture's official sizes."""
    from elcrec.settings import model_defaults

    official = record["settings"]
    sizes = {
        "hidden_size": official["hidden_size"],
        "inner_size": official["inner_size"],
        "layers": official["n_layers"],
        "heads": official["n_heads"],
        "max_len": official["MAX_ITEM_LIST_LENGTH"] + 1,  # the official table's unused last row
        "dropout": official["hidden_dropout_prob"],  # off: eval mode on both sides
        "attention_dropout": official["attn_dropout_prob"],
        "graph_dropout": official["graph_dropout_prob"],
        "graphcl_coefficient": official["graphcl_coefficient"],
        "kl_weight": official["kl_weight"],
        "weight_mean": official["weight_mean"],
        "sim_group": official["sim_group"],
        "cl_temp": official["cl_temp"],
    }
    return model_defaults("dcrec") | sizes


def sequences(fixture: dict[str, np.ndarray]):
    """Every user's training sequence s_1..s_{n-2} (the official test history), official ids; our row u
    is official user u + 1 (RecBole's user 0 is its padding)."""
    from elcrec.data.sequences import SequenceData

    users = fixture["data/users"]
    assert np.array_equal(users, np.arange(1, len(users) + 1))
    offsets = np.concatenate([[0], np.cumsum(fixture["data/lengths"])])
    return SequenceData(user_ids=users, items=fixture["data/items"], offsets=offsets)


def left_padded(items_first: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
    """RecBole's rows (items first, padding after) -> the same items at the end of each row."""
    rows, width = torch.from_numpy(items_first), items_first.shape[1]
    moved = torch.zeros_like(rows)
    for row, length in enumerate(lengths.tolist()):
        moved[row, width - length :] = rows[row, :length]
    return moved


def edge_positions(fixture: dict[str, np.ndarray], graph: str, edges, strict: bool = True) -> torch.Tensor:
    """The official dropped-edge indices of one GCN call (into the DGL graph after add_self_loop: its
    edges, then a self-loop per node) as indices into our edge list's (`EdgeList.propagation`).
    A dropped official edge that ours lacks must be the padding item's diagonal (0, 0), which the
    official adjacency graph has (run_DCRec.py:76 sets every diagonal, 0 included) and ours does not:
    it touches no other item. Without `strict` (our similarity graphs, `with_our_graphs`) a dropped
    official edge that ours lacks is skipped."""
    source, destination = fixture[f"graph/{graph}/source"], fixture[f"graph/{graph}/destination"]
    nodes = edges.size
    own = len(source) - nodes  # the official graph's own edges; the added self-loops follow
    ours = {
        (int(a), int(b)): index
        for index, (a, b) in enumerate(zip(edges.source.tolist(), edges.destination.tolist(), strict=True))
    }
    positions = []
    for index in fixture[f"draw/{graph}/dropped"].tolist():
        a, b = int(source[index]), int(destination[index])
        if index >= own:
            positions.append(len(edges.source) + a)
        elif (a, b) in ours:
            positions.append(ours[(a, b)])
        elif strict and (a != 0 or b != 0):
            raise AssertionError(f"dcrec: the official {graph} edge {(a, b)} is not in ours")
    return torch.tensor(positions, dtype=torch.long)


def official_edge_list(fixture: dict[str, np.ndarray], graph: str):
    """The official DGL graph of one GCN call (its own edges, zero-weight ones included) as our EdgeList."""
    from elcrec.data.graphs import sparse
    from elcrec.models.dcrec_graphs import EdgeList

    nodes = int(fixture[f"graph/{graph}/source"].max()) + 1
    own = len(fixture[f"graph/{graph}/source"]) - nodes
    indices = torch.from_numpy(
        np.stack([fixture[f"graph/{graph}/source"][:own], fixture[f"graph/{graph}/destination"][:own]])
    )
    return EdgeList(sparse(indices, torch.from_numpy(fixture[f"graph/{graph}/weight"][:own]), (nodes, nodes)))


def graph_differences(model, fixture: dict[str, np.ndarray]) -> dict:
    """Our prepared graphs against the official DGL graphs, row by row: the nonzero edges of each row
    (the official adjacency graph's padding diagonal (0, 0) aside), their weights and columns, and
    each row's structural out-degree. A similarity row may pick other columns among equal
    similarities (argpartition's order, the departure above) but must hold the same weights."""
    result = {}
    for graph in GRAPH_NAMES:
        edges = getattr(model, graph)
        source, destination = fixture[f"graph/{graph}/source"], fixture[f"graph/{graph}/destination"]
        weight = fixture[f"graph/{graph}/weight"]
        own = len(source) - edges.size
        theirs = {
            (int(a), int(b)): float(w)
            for a, b, w in zip(source[:own], destination[:own], weight[:own], strict=True)
            if w != 0 and (a, b) != (0, 0)
        }
        mine = {
            (int(a), int(b)): float(w)
            for a, b, w in zip(edges.source.tolist(), edges.destination.tolist(), edges.weight.tolist(), strict=True)
        }
        other_columns, weight_difference = 0, 0.0
        for row in range(edges.size):
            official_row = sorted((w, b) for (a, b), w in theirs.items() if a == row)
            our_row = sorted((w, b) for (a, b), w in mine.items() if a == row)
            if len(official_row) != len(our_row):
                weight_difference = float("inf")
                continue
            other_columns += {b for _, b in official_row} != {b for _, b in our_row}
            for (w_official, _), (w_ours, _) in zip(official_row, our_row, strict=True):
                weight_difference = max(weight_difference, abs(w_official - w_ours))
        out_degree = torch.bincount(torch.from_numpy(source[:own]), minlength=edges.size)
        result[graph] = {
            "official_edges": len(theirs),
            "our_edges": len(mine),
            "rows_with_other_columns": int(other_columns),
            "largest_weight_difference": weight_difference,
            "official_zero_weight_edges": int(np.sum(weight[:own] == 0)),
            "out_degrees_equal": bool(torch.equal(out_degree[1:], edges.out_degree[1:])),
            "official_padding_diagonal": float(weight[:own][(source[:own] == 0) & (destination[:own] == 0)].sum()),
        }
    return result


def graphs_equal(graphs: dict) -> bool:
    """The adjacency graphs edge for edge, the similarity graphs weight for weight (columns up to ties)."""
    return all(
        entry["largest_weight_difference"] <= 1e-6
        and entry["out_degrees_equal"]
        and (entry["rows_with_other_columns"] == 0 or "similarity" in graph)
        for graph, entry in graphs.items()
    )


def with_official_weights(fixture: dict[str, np.ndarray], record: dict, official_similarity: bool = True):
    """Our DCRec at the fixture's size, prepared on the fixture's sequences, the official seeded
    initialisation loaded strictly; with `official_similarity` the similarity graphs are the official
    ones (the departure switched off)."""
    from elcrec.models.registry import build

    torch.manual_seed(0)
    model = build("dcrec", record["vocab"], settings(record))
    model.prepare(sequences(fixture))
    model.load_state_dict(official_state(used(fixture), rename), strict=True)
    model.graphs = graph_differences(model, fixture)
    if official_similarity:
        model.train_similarity = official_edge_list(fixture, "train_similarity")
        model.eval_similarity = official_edge_list(fixture, "eval_similarity")
    return model


def our_batch(fixture: dict[str, np.ndarray], model, strict: bool = True) -> dict[str, torch.Tensor]:
    """The official batch of prefix examples as our pipeline lays one out (batch_unit prefixes: each
    row one example, its target in the last column), with the official draws to replay."""
    from elcrec.models.dcrec import DROPPED, WEIGHT_PRIOR

    inputs = left_padded(fixture["batch/item_id_list"], fixture["batch/item_length"])
    target = torch.zeros_like(inputs)
    target[:, -1] = torch.from_numpy(fixture["batch/item_id"])
    graphs = {"adjacency": model.train_adjacency, "similarity": model.train_similarity}
    graphs["augmented"] = model.train_adjacency
    return {
        "users": torch.from_numpy(fixture["batch/session_id"]) - 1,
        "input": inputs,
        "target": target,
        "negative": torch.zeros_like(inputs),  # DCRec's loss has no negatives (full-softmax CE)
        WEIGHT_PRIOR: torch.from_numpy(fixture["draw/prior"]),
    } | {DROPPED[view]: edge_positions(fixture, TRAIN_GRAPHS[view], graphs[view], strict) for view in TRAIN_GRAPHS}


def eval_batch(fixture: dict[str, np.ndarray], model, strict: bool = True) -> dict[str, torch.Tensor]:
    from elcrec.models.dcrec import DROPPED

    graphs = {"adjacency": model.eval_adjacency, "similarity": model.eval_similarity}
    return {
        "users": torch.from_numpy(fixture["eval/session_id"]) - 1,
        "input": left_padded(fixture["eval/item_id_list"], fixture["eval/item_length"]),
    } | {DROPPED[view]: edge_positions(fixture, EVAL_GRAPHS[view], graphs[view], strict) for view in EVAL_GRAPHS}


def differences(model, fixture: dict[str, np.ndarray], strict: bool = True) -> dict:
    """Our DCRec in eval mode (dropout off, as the fixture's step; the edge dropout replayed): the
    three losses, the total, every gradient after our total's backward, and the full score matrix."""
    model.eval().zero_grad()
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}
    losses = model.loss(our_batch(fixture, model, strict))
    with torch.no_grad():
        scores = model.score(eval_batch(fixture, model, strict))
    gradients = official_gradients(used(fixture), rename)
    result = compare(losses, official, model, gradients, scores=(scores, fixture["scores"]))
    within = result["within_tolerance"] and graphs_equal(model.graphs)
    return result | {"graphs": model.graphs, "within_tolerance": within}


def with_our_graphs(fixture: dict[str, np.ndarray], record: dict) -> dict:
    """The comparison on our own similarity graphs: the size of the departure (approximate: a dropped
    official similarity edge that ours lacks is not dropped in ours)."""
    return differences(with_official_weights(fixture, record, official_similarity=False), fixture, strict=False)


def check(fixture: dict[str, np.ndarray], record: dict, weights: Path | None = None, sequences=None, attributes=None):
    return differences(with_official_weights(fixture, record), fixture)


CHECK = {
    "fixture": "dcrec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "a training step of the official model's seeded initialisation at a tiny size (10 Beauty users, 42 items, "
        "hidden 32), 16 prefix examples of its shuffled loader, eval mode, its edge dropouts and KL prior replayed: "
        "CE, graph CL, KL, the total; every gradient; the full score matrix of 8 test users; the graphs"
    ),
    "departures": (
        "the similarity graphs' zero-weight edges (argpartition's pick among equal zeros, counted in DGL's "
        "in-degrees): the official similarity graphs are used, their nonzero edges checked equal to ours"
    ),
}

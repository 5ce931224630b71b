"""DCRec: every loss term and graph against a hand computation on tiny inputs, the graphs built in
prepare from training items only, the interface, and determinism under a seed."""

import math

import numpy as np
import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch, tiny_sequences
from torch.nn import functional

import elcrec.models.dcrec as dcrec
import elcrec.models.dcrec_graphs as dcrec_graphs
from elcrec.data.batches import prefixes_ending_at
from elcrec.data.sequences import SequenceData
from elcrec.models.registry import build

QUIET = {"dropout": 0.0, "attention_dropout": 0.0, "graph_dropout": 0.0}


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def model(**overrides) -> dcrec.DCRec:
    torch.manual_seed(0)
    return build("dcrec", VOCAB, settings_for("dcrec", **overrides))


# ----- the training examples and the sequence view -----
def test_prefix_examples_are_the_official_prefix_expansion():
    inputs = torch.tensor([[0, 0, 3, 4, 5], [0, 0, 0, 0, 7]])
    targets = torch.tensor([[0, 0, 4, 5, 6], [0, 0, 0, 0, 8]])
    examples = dcrec.prefix_examples(inputs, targets)
    assert examples["items"].tolist() == [[3, 0, 0], [3, 4, 0], [3, 4, 5], [7, 0, 0]]  # items first, cut to 3
    assert examples["lengths"].tolist() == [1, 2, 3, 1]
    assert examples["last"].tolist() == [3, 4, 5, 7]
    assert examples["target"].tolist() == [4, 5, 6, 8]
    assert examples["rows"].tolist() == [0, 0, 0, 1]


def test_items_first_moves_the_padding_behind_the_items():
    items, lengths = dcrec.items_first(torch.tensor([[0, 0, 1, 2], [0, 5, 6, 7], [0, 0, 0, 3]]))
    assert items.tolist() == [[1, 2, 0], [5, 6, 7], [3, 0, 0]] and lengths.tolist() == [2, 3, 1]


def test_each_prefix_is_encoded_alone_and_the_length_groups_change_nothing():
    net = model(**QUIET, max_len=8)
    net.eval()
    rows = torch.tensor([[3, 0, 0, 0, 0, 0, 0, 0], [3, 4, 0, 0, 0, 0, 0, 0], [3, 4, 5, 6, 7, 0, 0, 0]])
    lengths = torch.tensor([1, 2, 5])
    full_width = net.backbone(rows)[torch.arange(3), lengths - 1]
    assert torch.allclose(net.encode(rows, lengths), full_width, atol=1e-6)  # widths 1, 2, 8 vs 8
    # the attention is bidirectional, yet a prefix never sees the items after it
    other_future = torch.tensor([[3, 4, 0, 0, 0, 0, 0, 0], [3, 4, 9, 9, 9, 0, 0, 0]])
    assert torch.allclose(net.encode(other_future, torch.tensor([2, 5]))[0], full_width[1], atol=1e-6)
    assert not torch.allclose(net.backbone(rows[2:])[0, 1], full_width[1], atol=1e-4)  # 4 in the long row sees 5..7


# ----- graphs -----


def test_prepare_builds_the_graphs_from_training_items_only():
    # user 0: 1 2 3 4 | 5 6 (validation 5, test 6); user 1: 2 3 1 | 7 8
    full = SequenceData.from_sequences([np.array([1, 2, 3, 4, 5, 6]), np.array([2, 3, 1, 7, 8])])
    split = full.split(max_len=5)
    net = build("dcrec", 10, settings_for("dcrec"))
    net.prepare(split.train_sequences)

    def linked(graph: dcrec_graphs.EdgeList) -> set[tuple[int, int]]:
        return {(a, b) for a, b in zip(graph.source.tolist(), graph.destination.tolist(), strict=True) if a != b}

    # training graphs: the training inputs 1 2 3 and 2 3 (each user's last training item is a target)
    assert linked(net.train_adjacency) == {(1, 2), (2, 1), (2, 3), (3, 2)}
    assert linked(net.eval_adjacency) == {(1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3), (3, 1), (1, 3)}
    for graph in (net.train_similarity, net.eval_similarity):
        assert set(graph.source.tolist()) | set(graph.destination.tolist()) <= {1, 2, 3, 4}
    assert set(net.train_similarity.source.tolist()) == {1, 2, 3}  # 4 is no training input
    assert not {5, 6, 7, 8} & {item for pair in linked(net.eval_adjacency) for item in pair}
    # the transitions the augmented graph loses for user 0: 1 2 and 2 3, both directions
    keys = net.removed_transitions(torch.tensor([0])).tolist()
    assert sorted((key // 10, key % 10) for key in keys) == [(1, 2), (2, 1), (2, 3), (3, 2)]
    assert net.state_dict().keys() == build("dcrec", 10, settings_for("dcrec")).state_dict().keys()  # not saved


def test_neighbour_readouts_split_civil_and_foreign_neighbours_by_hand():
    # node 1: neighbours 1 2 3; node 2: neighbours 1 2 (rows of a 5-item graph, diagonal included)
    row_starts = torch.tensor([0, 0, 3, 5, 5, 5])
    columns = torch.tensor([1, 2, 3, 1, 2])
    features = torch.eye(5)
    removed = torch.tensor(sorted([1 * 5 + 2, 2 * 5 + 1]))  # the batch users' transition 1 2
    civil, foreign = dcrec.neighbour_readouts(torch.tensor([1, 2]), row_starts, columns, removed, 5, features, 10)
    assert torch.allclose(foreign, torch.tensor([[0, 0.5, 0, 0.5, 0], [0, 0, 1.0, 0, 0]]))
    assert torch.allclose(civil, torch.tensor([[0, 0, 1.0, 0, 0], [0, 1.0, 0, 0, 0]]))
    # everything removed: no foreign neighbour, a zero read-out
    everything = torch.tensor(sorted([1 * 5 + 2, 2 * 5 + 1, 2 * 5 + 2]))
    civil, foreign = dcrec.neighbour_readouts(torch.tensor([2]), row_starts, columns, everything, 5, features, 10)
    assert foreign.abs().sum() == 0 and torch.allclose(civil, torch.tensor([[0, 0.5, 0.5, 0, 0]]))
    # at most `limit` of each; civil is everything but the drawn foreign ones (the official set difference)
    torch.manual_seed(0)
    civil, foreign = dcrec.neighbour_readouts(torch.tensor([1] * 20), row_starts, columns, removed, 5, features, 1)
    assert ((foreign == 1).sum(dim=1) == 1).all() and ((civil == 1).sum(dim=1) == 1).all()
    assert (foreign[:, [1, 3]].sum(dim=1) == 1).all() and (civil * foreign).sum() == 0
    assert set(civil.argmax(dim=1).tolist()) == {1, 2, 3}  # an undrawn foreign neighbour can be civil


# ----- loss terms -----
def test_conformity_weights_by_hand():
    full = torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    augmented = torch.tensor([[1.0, 0], [1, 0], [1, 1]])  # cosines with full: 1, 0, 1
    foreign = torch.tensor([[0.0, 1], [0, 1], [1, 1]])  # with full: 0, 1, 1
    civil = torch.tensor([[0.0, 1], [0, 0], [1, -1]])  # with foreign: 1, 0 (zero vector), 0
    weights = dcrec.conformity_weights(full, augmented, civil, foreign, 0.5)
    # agreements sigmoid(2/3), sigmoid(1/3), sigmoid(2/3) -> min-max 1, 0, 1 -> mean 2/3 rescaled to 0.5
    assert sigmoid(2 / 3) > sigmoid(1 / 3)
    assert weights.tolist() == pytest.approx([0.75, 0.0, 0.75])
    same = dcrec.conformity_weights(full[:1], augmented[:1], civil[:1], foreign[:1], 0.4)
    assert same.tolist() == pytest.approx([0.4])


def test_weight_prior_kl_by_hand():
    prior, weights = torch.tensor([0.6, 0.4, -0.1]), torch.tensor([0.2, 0.9, 0.4])
    p = [1e-8 + 1e-8, 0.4 + 1e-8, 0.6 + 1e-8]  # sorted, clamped at 1e-8
    w = [0.2, 0.4, 0.9]
    log_q = [x - math.log(sum(math.exp(y) for y in w)) for x in w]
    expected = sum(pi * (math.log(pi) - qi) for pi, qi in zip(p, log_q, strict=True)) / 3
    assert float(dcrec.weight_prior_kl(prior, weights)) == pytest.approx(expected, rel=1e-5)


def test_rowwise_info_nce_by_hand():
    one, two = torch.tensor([[1.0, 0], [0, 2]]), torch.tensor([[3.0, 0], [1, 1]])
    root = 1 / math.sqrt(2)  # cosines: row 0 (1, root), row 1 (0, root); temperature 0.5 doubles them
    expected = [
        -math.log(1e-8 + math.exp(2) / (math.exp(2) + math.exp(2 * root))),
        -math.log(1e-8 + math.exp(2 * root) / (1 + math.exp(2 * root))),
    ]
    assert dcrec.rowwise_info_nce(one, two, 0.5).tolist() == pytest.approx(expected)


def test_attention_fusion_by_hand():
    views = torch.tensor([[[1.0, 0]], [[0.0, 1]], [[2.0, 0]]])  # sequence, transition, similarity
    fused = dcrec.attention_fusion(views, torch.eye(2), torch.tensor([[1.0, 0]]))  # logits 1, 0, 2
    z = math.exp(1) + 1 + math.exp(2)
    assert fused[0].tolist() == pytest.approx([(math.exp(1) + 2 * math.exp(2)) / z, 1 / z])


def test_loss_wires_the_views_as_the_official_code():
    net = model(**QUIET)
    net.prepare(tiny_sequences())
    net.train()
    # one-item prefixes only: every conformity weight is 0.5 and the personalised weights 0
    batch = {
        "users": torch.tensor([0, 1]),
        "input": torch.tensor([[0, 0, 0, 0, 3], [0, 0, 0, 0, 5]]),
        "target": torch.tensor([[0, 0, 0, 0, 4], [0, 0, 0, 0, 6]]),
    }
    losses = net.loss(batch)
    last = torch.tensor([3, 5])
    sequence = net.encode(torch.tensor([[3], [5]]), torch.tensor([1, 1]))
    transition = net.graph_view(net.train_adjacency)[last]
    similarity = net.graph_view(net.train_similarity)[last]
    expected_cl = 0.1 * (0.5 * dcrec.rowwise_info_nce(sequence, transition, 1.0)).mean()
    fused = net.fuse(sequence, transition, similarity)
    expected_ce = functional.cross_entropy(fused @ net.backbone.item_embedding.weight.T, torch.tensor([4, 6]))
    assert losses["graph_cl"].item() == pytest.approx(expected_cl.item(), rel=1e-5)
    assert losses["next_item"].item() == pytest.approx(expected_ce.item(), rel=1e-5)
    assert losses["total"].item() == pytest.approx((losses["next_item"] + losses["graph_cl"] + losses["kl"]).item())
    # scoring fuses the same views on the evaluation graphs, against the plain item embeddings
    net.eval()
    inputs = torch.tensor([[0, 0, 0, 3, 4]])
    represented = net.fuse(
        net.encode(torch.tensor([[3, 4]]), torch.tensor([2])),
        net.graph_view(net.eval_adjacency)[torch.tensor([4])],
        net.graph_view(net.eval_similarity)[torch.tensor([4])],
    )
    scores = net.score({"input": inputs, "users": torch.tensor([0])})
    assert torch.allclose(scores, represented @ net.backbone.item_embedding.weight.T, atol=1e-6)


# ----- interface and determinism -----
def test_interface_conformance():
    torch.manual_seed(0)
    net = build("dcrec", VOCAB, settings_for("dcrec"))
    assert net.name == "dcrec"
    with pytest.raises(RuntimeError, match="prepare"):
        net.loss(tiny_batch())
    net.prepare(tiny_sequences())
    net.on_epoch_start(epoch_context())
    net.train()
    losses = net.loss(tiny_batch())
    assert set(losses) == {"next_item", "graph_cl", "kl", "total"}
    assert all(value.ndim == 0 and torch.isfinite(value) for value in losses.values())
    losses["total"].backward()
    assert [name for name, parameter in net.named_parameters() if parameter.grad is None] == []
    net.eval()
    score_batch = {"input": tiny_batch()["input"], "users": torch.arange(4)}
    assert net.score(score_batch).shape == (4, VOCAB)
    embeddings, intents = net.user_snapshot(score_batch)
    assert embeddings.shape == (4, settings_for("dcrec")["hidden_size"]) and intents is None


def test_same_seed_same_losses_and_scores_independent_of_the_global_generator():
    def run() -> tuple[list[float], torch.Tensor]:
        net = model()
        net.prepare(tiny_sequences())
        net.train()
        torch.manual_seed(7)
        losses = [value.item() for value in net.loss(tiny_batch()).values()]
        net.eval()
        torch.rand(5)  # evaluation draws its edge dropout from its own generator
        return losses, net.score({"input": tiny_batch()["input"], "users": torch.arange(4)})

    (losses_one, scores_one), (losses_two, scores_two) = run(), run()
    assert losses_one == losses_two and torch.equal(scores_one, scores_two)
    net = model(eval_edge_dropout=False)
    net.prepare(tiny_sequences())
    net.eval()
    score_batch = {"input": tiny_batch()["input"], "users": torch.arange(4)}
    with_dropout = model()
    with_dropout.prepare(tiny_sequences())
    with_dropout.eval()
    assert not torch.allclose(net.score(score_batch), with_dropout.score(score_batch))


def test_a_saved_model_scores_the_same_after_prepare():
    net = model()
    net.prepare(tiny_sequences())
    net.eval()
    score_batch = {"input": tiny_batch()["input"], "users": torch.arange(4)}
    loaded = build("dcrec", VOCAB, settings_for("dcrec"))
    loaded.prepare(tiny_sequences())
    loaded.load_state_dict(net.state_dict())
    loaded.eval()
    assert torch.equal(loaded.score(score_batch), net.score(score_batch))


def test_a_batch_of_prefix_examples_gives_the_losses_of_its_users_expanded():
    """The default (official) batches hold one prefix a row; the same examples of the same users as
    one batch of users, expanded in the model, give the same losses (no dropout)."""
    batch = tiny_batch()
    rows, ends = (batch["input"] > 0).nonzero(as_tuple=True)
    examples = {key: prefixes_ending_at(batch[key][rows], ends) for key in ("input", "target")} | {"users": rows}
    losses = {}
    for unit, data in (("prefixes", examples), ("users", batch)):
        net = model(batch_unit=unit, **QUIET)
        net.prepare(tiny_sequences())
        torch.manual_seed(3)
        with torch.no_grad():
            losses[unit] = net.train().loss(data)
    for name in ("next_item", "graph_cl", "kl", "total"):
        assert losses["prefixes"][name].item() == pytest.approx(losses["users"][name].item(), rel=1e-5, abs=1e-7)


# ----- replaying another run's draws (elcrec.official.dcrec) -----


def test_replayed_draws_make_the_step_and_the_scores_independent_of_the_generator():
    net = model(dropout=0.0, attention_dropout=0.0)  # graph_dropout 0.5 stays
    net.prepare(tiny_sequences())
    batch = tiny_batch()
    rows, ends = (batch["input"] > 0).nonzero(as_tuple=True)
    examples = {key: prefixes_ending_at(batch[key][rows], ends) for key in ("input", "target")} | {"users": rows}
    edges = {"adjacency": net.train_adjacency, "similarity": net.train_similarity, "augmented": net.train_adjacency}
    replay = {
        dcrec.DROPPED[view]: torch.randint(
            len(graph.source) + graph.size, (7,), generator=torch.Generator().manual_seed(1)
        )
        for view, graph in edges.items()
    }
    replay[dcrec.WEIGHT_PRIOR] = torch.linspace(0.3, 0.7, len(rows))

    def losses(seed: int, entries: dict) -> list[float]:
        torch.manual_seed(seed)
        with torch.no_grad():
            return [value.item() for value in net.train().loss(examples | entries).values()]

    assert losses(1, replay) == losses(2, replay)
    assert losses(1, {}) != losses(2, {})
    # the handed prior is the one the KL term uses
    prior_only = {dcrec.WEIGHT_PRIOR: replay[dcrec.WEIGHT_PRIOR]}
    assert losses(1, prior_only)[2] != losses(1, {dcrec.WEIGHT_PRIOR: replay[dcrec.WEIGHT_PRIOR] + 0.1})[2]
    # scoring: the evaluation graphs' dropped edges replace the per-batch generator's draw
    scoring = {"input": batch["input"], "users": torch.arange(4)}
    net.eval()
    replayed = {key: replay[dcrec.DROPPED[key]] for key in ("adjacency", "similarity")}
    eval_replay = {dcrec.DROPPED[key]: value for key, value in replayed.items()}
    with torch.no_grad():
        one = net.score(scoring | eval_replay)
        other_users = net.score(scoring | eval_replay | {"users": torch.arange(4) + 5})  # another generator seed
        drawn = net.score(scoring)
    assert torch.equal(one, other_users) and not torch.allclose(one, drawn)

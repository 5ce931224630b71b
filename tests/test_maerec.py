"""models/maerec.py: the item graph, the path masker, the reconstruction and recommender losses and
the scoring, each against a hand computation on a tiny graph; then the interface checks."""

import math

import numpy as np
import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch, tiny_sequences
from torch.nn import functional

import elcrec.models.maerec as maerec
from elcrec.data.sequences import SequenceData
from elcrec.models.backbone import Backbone
from elcrec.models.maerec import (
    EdgeDecoder,
    mask_paths,
    masker_reward,
    reconstruction_loss,
    reconstruction_negatives,
    seed_scores,
)
from elcrec.models.registry import build

NO_DROPOUT = {"dropout": 0.0, "attention_dropout": 0.0}


def model(vocab: int = VOCAB, **overrides) -> maerec.MAERec:
    torch.manual_seed(0)
    return build("maerec", vocab, settings_for("maerec", **overrides))


def prepared(**overrides) -> maerec.MAERec:
    built = model(**overrides)
    built.prepare(tiny_sequences())
    return built


def edge_set(rows: torch.Tensor, cols: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(rows.tolist(), cols.tolist(), strict=True))


def dense(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix[rows, cols] = values.double()
    return matrix


# ----- the item graph -----
def test_the_graph_links_training_items_up_to_three_apart_with_self_loops_and_sym_normalisation():
    # user 1: 1..7 (validation 6, test 7); user 2: 8 2 9 3 (validation 9, test 3)
    full = SequenceData.from_sequences([np.arange(1, 8), np.array([8, 2, 9, 3])])
    split = full.split(max_len=3)
    built = model(vocab=full.vocab_size)  # 11: items 1..9, the mask id 10
    built.prepare(split.train_sequences)
    rows, cols = built.graph_rows, built.graph_cols
    # training parts 1 2 3 4 5 and 8 2: every pair at most 3 apart (not 1-5), and 8-2
    links = {(1, 2), (2, 3), (3, 4), (4, 5), (1, 3), (2, 4), (3, 5), (1, 4), (2, 5), (2, 8)}
    links |= {(b, a) for a, b in links}
    loops = {(node, node) for node in range(10)}  # A + I over the official rows: padding and items 1..9
    assert edge_set(rows, cols) == links | loops  # the mask id 10 is no node: no edge, not even a loop
    linked = {a for a, b in edge_set(rows, cols) if a != b}
    assert linked == {1, 2, 3, 4, 5, 8}  # validation/test-only items (6, 7, 9): loops only
    assert edge_set(built.edge_keys // 11, built.edge_keys % 11) == links  # the official ii_dok: no added loops
    adjacency = torch.zeros(10, 10, dtype=torch.float64)
    for a, b in links | loops:
        adjacency[a, b] = 1.0
    inverse_root = adjacency.sum(1).pow(-0.5)
    expected = torch.zeros(11, 11, dtype=torch.float64)
    expected[:10, :10] = inverse_root[:, None] * adjacency * inverse_root[None, :]
    assert torch.allclose(dense(rows, cols, built.graph_values, 11), expected, atol=1e-7)
    assert built.graph_values[(rows == 1) & (cols == 2)].item() == pytest.approx(1 / math.sqrt(4 * 6))


def test_the_graph_is_rebuilt_by_prepare_and_not_stored_in_the_weights():
    built = prepared()
    assert not any("graph" in key or "edge_keys" in key for key in built.state_dict())
    with pytest.raises(RuntimeError, match="prepare"):
        model().score({"input": tiny_batch()["input"]})


# ----- the masker -----
def chain_graph() -> tuple[torch.Tensor, torch.Tensor]:
    """1 - 2 - 3 - 4 - 5 - 6 with self-loops, both directions, coalesced order."""
    pairs = {(a, a) for a in range(1, 7)} | {(a, a + 1) for a in range(1, 6)} | {(a + 1, a) for a in range(1, 6)}
    rows, cols = zip(*sorted(pairs), strict=True)
    return torch.tensor(rows), torch.tensor(cols)


def test_path_masking_grows_from_the_seeds_through_the_endpoints_or_the_official_id_sums():
    rows, cols = chain_graph()
    seeds = torch.tensor([1])
    # path_prob 1 keeps every reached node. endpoints: {1} -> {1, 2} -> {2, 3}
    remaining, masked = mask_paths(rows, cols, seeds, 3, 1.0, "endpoints")
    expected = {(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 3)}
    assert edge_set(masked[:, 0], masked[:, 1]) == expected and len(masked) == len(expected)
    assert masked[:3].tolist() == [[1, 1], [1, 2], [2, 1]]  # round by round: the seed's edges first
    assert edge_set(rows[remaining], cols[remaining]) == edge_set(rows, cols) - expected
    # the official sum of the two ids: {1} -> {1+1, 1+2, 2+1} = {2, 3} -> {4, 5, 6, 7}: everything
    remaining, masked = mask_paths(rows, cols, seeds, 3, 1.0, "sum")
    assert edge_set(masked[:, 0], masked[:, 1]) == edge_set(rows, cols) and not remaining.any()
    # one round masks exactly the edges that touch a seed
    remaining, masked = mask_paths(rows, cols, torch.tensor([4, 6]), 1, 0.5, "sum")
    assert edge_set(masked[:, 0], masked[:, 1]) == {(3, 4), (4, 3), (4, 4), (4, 5), (5, 4), (5, 6), (6, 5), (6, 6)}
    with pytest.raises(ValueError, match="next_seeds"):
        mask_paths(rows, cols, seeds, 3, 0.5, "walk")


def test_path_prob_keeps_that_fraction_of_the_reached_nodes_as_next_seeds():
    rows, cols = chain_graph()
    torch.manual_seed(0)
    # endpoints of the seed 3's edges: {2, 3, 4}; int(3 * 0.5) = 1 of them seeds round two
    for _ in range(10):
        remaining, masked = mask_paths(rows, cols, torch.tensor([3]), 2, 0.5, "endpoints")
        second_round = edge_set(masked[5:, 0], masked[5:, 1])
        assert edge_set(masked[:5, 0], masked[:5, 1]) == {(2, 3), (3, 2), (3, 3), (3, 4), (4, 3)}
        assert second_round in ({(1, 2), (2, 1), (2, 2)}, {(4, 4), (4, 5), (5, 4)}, set())  # seed 2, 4 or 3


def test_the_encoder_sees_the_graph_without_the_masked_paths_renormalised():
    built = prepared(mask_candidates=2, mask_depth=2)
    scores = built.remask()
    assert scores.shape == (VOCAB - 1,) and scores.requires_grad  # the masker learns through the ego embeddings
    graph = edge_set(built.graph_rows, built.graph_cols)
    masked = edge_set(built.masked_edges[:, 0], built.masked_edges[:, 1])
    rows, cols, values = built.encoder_graph
    assert masked and masked <= graph  # the masked paths are edges of the graph
    assert len(masked) == len(built.masked_edges)  # each at most once
    assert edge_set(rows, cols) == graph - masked  # and the encoder's graph is the rest
    kept = torch.zeros(VOCAB, VOCAB, dtype=torch.float64)
    kept[rows, cols] = 1.0
    inverse_root = (kept.sum(1) + 1e-12).pow(-0.5)  # model.py:277: no self-loops re-added
    expected = inverse_root[:, None] * kept * inverse_root[None, :]
    assert torch.allclose(dense(rows, cols, values, VOCAB), expected, atol=1e-6)


def test_the_mask_id_is_no_node_the_masker_can_score_seed_or_mask(monkeypatch):
    """The official item table is rows 0..items (handler.py:46, 66): the masker's mean and top-k run over
    those (model.py:265-268), and an id sum reaching our mask id (model.py:308) matches no edge there."""
    built = prepared(mask_candidates=VOCAB - 1, path_prob=1.0, mask_depth=3)  # every real row a seed
    mask_id = VOCAB - 1
    assert not ((built.graph_rows == mask_id) | (built.graph_cols == mask_id)).any()
    reached = []
    original = maerec.mask_paths

    def spying(rows, cols, seeds, *args):
        reached.append(seeds)
        return original(rows, cols, seeds, *args)

    monkeypatch.setattr(maerec, "mask_paths", spying)
    scores = built.remask()
    assert scores.shape == (VOCAB - 1,) and mask_id not in reached[0].tolist()
    assert not (built.masked_edges == mask_id).any()  # round 2 reaches id sums up to 2 * (VOCAB - 2)
    with torch.no_grad():
        built.item_embedding[mask_id] = 0.0  # the check's official weights: nothing reaches that row
    built.zero_grad()
    losses = built.loss(tiny_batch())
    losses["total"].backward()
    assert torch.equal(built.item_embedding.grad[mask_id], torch.zeros(8))


def test_seed_scores_follow_the_official_recursion():
    rows, cols = chain_graph()
    torch.manual_seed(1)
    embeddings = torch.randn(7, 4, dtype=torch.float64)
    ones = torch.zeros(7, 7, dtype=torch.float64)
    ones[rows, cols] = 1.0
    order = ones.sum(1, keepdim=True)
    grown, counts = [ones @ embeddings - embeddings], [order]
    for _ in range(3):  # path_prob 1: no edge dropped, `order` stays the full degree
        grown.append(ones @ grown[-1] - grown[-1] - order * grown[-1])
        counts.append(ones @ counts[-1] - counts[-1] - order)
    neighbourhood = functional.normalize(sum(grown) / (sum(counts) + 1e-8))
    expected = (neighbourhood * functional.normalize(embeddings)).sum(-1)
    assert torch.allclose(seed_scores(rows, cols, embeddings, 3, 1.0), expected)
    # path_prob 0: every edge dropped in the first step, but that step still uses the full degree:
    # g1 = -g0 (1 + d), c1 = -d (1 + d); then g2 = -g1, c2 = -c1, so the sums are g0 and d
    expected = (functional.normalize(grown[0] / (order + 1e-8)) * functional.normalize(embeddings)).sum(-1)
    assert torch.allclose(seed_scores(rows, cols, embeddings, 2, 0.0), expected)
    # path_prob 0.5: the same edge draws (keep 1/2, then 1/4 of those, then 1/8), `order` one step behind
    torch.manual_seed(7)
    kept_rows, kept_cols, thinned = rows, cols, ones
    grown, counts, order = [ones @ embeddings - embeddings], [ones.sum(1, keepdim=True)], ones.sum(1, keepdim=True)
    for step in range(3):
        keep = torch.rand(len(kept_rows)) < 0.5 ** (step + 1)
        kept_rows, kept_cols = kept_rows[keep], kept_cols[keep]
        thinned = torch.zeros(7, 7, dtype=torch.float64)
        thinned[kept_rows, kept_cols] = 1.0
        grown.append(thinned @ grown[-1] - grown[-1] - order * grown[-1])
        counts.append(thinned @ counts[-1] - counts[-1] - order)
        order = thinned.sum(1, keepdim=True)
    neighbourhood = functional.normalize(sum(grown) / (sum(counts) + 1e-8))
    expected = (neighbourhood * functional.normalize(embeddings)).sum(-1)
    torch.manual_seed(7)
    assert torch.allclose(seed_scores(rows, cols, embeddings, 3, 0.5), expected)


def test_the_masker_reward_compares_the_last_decrease_with_the_mean_decrease():
    def reward(values):
        return float(masker_reward([torch.tensor(value) for value in values], 0.2))

    assert reward([5.0]) == 1.0 and reward([5.0, 4.0]) == 1.0  # fewer than three losses
    assert reward([5.0, 4.0, 3.5]) == pytest.approx(0.2)  # 0.5 < 1
    assert reward([5.0, 4.0, 2.0]) == 1.0  # 2 > 1
    assert reward([5.0, 4.0, 3.0, 2.5, 1.0]) == 1.0  # 1.5 > mean(1, 1, 0.5)
    assert reward([3.0, 2.0, 1.0]) == pytest.approx(0.2)  # a tie is not a win


def test_the_mask_loss_is_applied_every_mask_steps_with_the_reward_of_the_window(monkeypatch):
    monkeypatch.setattr(maerec, "gumbel_noise", lambda shape, device: torch.zeros(shape))
    built = prepared(mask_steps=3, path_prob=1.0, **NO_DROPOUT)
    optimiser = torch.optim.SGD(built.parameters(), lr=0.5)
    built.on_epoch_start(epoch_context())
    window, graphs = [], []
    for step in range(7):
        rows = built.item_embedding.detach()[:-1]  # the official rows 0..items: the mask id is no node
        scores = seed_scores(built.graph_rows, built.graph_cols, rows, 3, 1.0)
        losses = built.loss(tiny_batch())
        graphs.append(built.encoder_graph)
        window.append(losses["next_item"].item())
        if step % 3 == 0:
            decreases = [window[i] - window[i + 1] for i in range(len(window) - 1)]
            reward = 1.0 if len(window) < 3 or decreases[-1] > sum(decreases[:-1]) / (len(decreases) - 1) else 0.2
            assert losses["mask"].item() == pytest.approx(-scores.mean().item() * reward, rel=1e-5)
            window = window[-1:]
        assert [value.item() for value in built.main_losses] == window  # the official loss_his (main.py:136, 142)
        if step % 3:
            assert losses["mask"].item() == 0.0
            assert graphs[-1] is graphs[-2]  # the same masked graph until the next masking step
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
    built.on_epoch_start(epoch_context(epoch=1))  # a new epoch masks again at its first step
    assert built.loss(tiny_batch())["mask"].item() != 0.0


# ----- the losses -----
def test_reconstruction_loss_matches_a_hand_computation():
    torch.manual_seed(2)
    decoder = EdgeDecoder(3, 2)
    layers = [torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 3)]  # the third is never read
    positive = torch.tensor([[1, 2], [4, 4]])
    negative = torch.tensor([[[1, 5], [3, 2]], [[4, 1], [2, 4]]])
    weights = [layer.weight.detach().double() for layer in decoder.mlp if isinstance(layer, torch.nn.Linear)]
    biases = [layer.bias.detach().double() for layer in decoder.mlp if isinstance(layer, torch.nn.Linear)]

    def score(u: int, v: int) -> float:
        features = torch.cat([layers[i][u].double() * layers[j][v].double() for i in (0, 1) for j in (0, 1)])
        hidden = torch.relu(weights[0] @ features + biases[0])
        hidden = torch.relu(weights[1] @ hidden + biases[1])
        return math.exp(torch.sigmoid(weights[2] @ hidden + biases[2]).item())

    expected = 0.0
    for (u, v), pairs in zip(positive.tolist(), negative.tolist(), strict=True):
        s_plus = score(u, v)
        expected -= s_plus / (s_plus + sum(score(a, b) for a, b in pairs) + 1e-8) + 1e-8
    actual = reconstruction_loss(decoder(layers, positive), decoder(layers, negative))
    assert actual.item() == pytest.approx(expected, rel=1e-5)
    assert decoder(layers, negative).shape == (2, 2)


def test_reconstruction_negatives_keep_one_end_and_may_avoid_graph_edges():
    torch.manual_seed(3)
    positive = torch.tensor([[1, 2], [3, 1]])
    negative = reconstruction_negatives(positive, 40, 6)
    assert negative.shape == (2, 40, 2)
    assert torch.equal(negative[:, :20, 0], positive[:, :1].expand(2, 20))  # (u, random)
    assert torch.equal(negative[:, 20:, 1], positive[:, 1:].expand(2, 20))  # (random, v)
    assert negative.min() >= 1 and negative.max() <= 5  # real items only: not padding, not the mask id 6
    edges = torch.tensor([1 * 7 + 2, 1 * 7 + 3, 2 * 7 + 1, 3 * 7 + 1, 4 * 7 + 1, 1 * 7 + 4])
    rejected = reconstruction_negatives(positive, 40, 6, edges, 7)
    keys = rejected[..., 0] * 7 + rejected[..., 1]
    assert not torch.isin(keys, edges).any()
    assert torch.isin(negative[..., 0] * 7 + negative[..., 1], edges).any()  # without rejection edges occur


def test_the_model_reconstructs_masked_edges_against_real_item_negatives():
    built = prepared(mask_candidates=3, mask_depth=1, reconstruction_edges=4, reconstruction_negatives=6)
    built.remask()
    masked = edge_set(built.masked_edges[:, 0], built.masked_edges[:, 1])
    for _ in range(20):
        positive, negative = built.reconstruction_pairs()
        assert len(positive) == min(4, len(masked)) and edge_set(positive[:, 0], positive[:, 1]) <= masked
        assert negative.shape == (len(positive), 6, 2)
        assert negative.min() >= 1 and negative.max() <= VOCAB - 2  # never the padding 0 or the mask id


def test_official_next_item_negatives_avoid_the_training_sequence_and_the_largest_id():
    """handler.py:12-16, 83-90: ids 1..items-1, redrawn while in the user's training sequence only."""
    training = [np.array([1, 2, 3]), np.array([4, 5]), np.array([6, 7, 8, 9]), np.array([2, 4])]
    built = model()
    built.prepare(SequenceData.from_sequences(training))
    batch = tiny_batch()
    torch.manual_seed(1)
    drawn = torch.stack([built.next_item_negatives(batch) for _ in range(300)])  # [draws, users, positions]
    assert torch.equal(drawn > 0, (batch["target"] > 0).expand_as(drawn))
    for user, items in enumerate(training):
        ids = set(drawn[:, user][drawn[:, user] > 0].tolist())
        assert ids == set(range(1, VOCAB - 2)) - set(items.tolist())  # 10, the largest item id, is never drawn
    protocol = prepared(next_item_negatives="protocol")
    assert protocol.official_negatives is False and prepared().official_negatives is True


def test_the_recommender_loss_is_bce_over_the_gcn_table_of_the_masked_graph():
    built = prepared(reg=1e-3, mask_candidates=2, mask_depth=1, next_item_negatives="protocol", **NO_DROPOUT)
    batch = tiny_batch()
    losses = built.loss(batch)
    rows, cols, values = built.encoder_graph
    adjacency = dense(rows, cols, values, VOCAB)
    ego = built.item_embedding.detach().double()
    table = ego + adjacency @ ego + adjacency @ adjacency @ ego
    outputs = built.transformer(batch["input"], table.float()).detach().double()
    expected, positions = 0.0, 0
    for user in range(4):
        for t in range(5):
            target, negative = int(batch["target"][user, t]), int(batch["negative"][user, t])
            if target == 0:
                continue
            output = outputs[user, t]
            expected -= math.log(torch.sigmoid(output @ table[target]).item() + 1e-24)
            expected -= math.log(1 - torch.sigmoid(output @ table[negative]).item() + 1e-24)
            positions += 1
    assert losses["next_item"].item() == pytest.approx(expected / positions, rel=1e-5)
    squares = sum(float((parameter.detach().double() ** 2).sum()) for parameter in built.parameters())
    assert losses["regularisation"].item() == pytest.approx(1e-3 * squares, rel=1e-5)
    parts = losses["next_item"] + losses["reconstruction"] + losses["regularisation"] + losses["mask"]
    assert losses["total"].item() == pytest.approx(parts.item(), rel=1e-6)


def test_the_transformer_sums_its_layers_and_its_feed_forward_has_no_residual():
    built = prepared(layers=1, **NO_DROPOUT)
    transformer = built.transformer.eval()
    torch.manual_seed(4)
    items = torch.randn(VOCAB, 8)
    ids = tiny_batch()["input"]
    first = functional.layer_norm(
        items[ids] + transformer.position_embedding[None], (8,), *_norm(transformer.embedding_norm), eps=1e-5
    )
    attended = transformer.attention[0](first, Backbone.additive_mask(ids))
    block = transformer.feed_forward[0]
    hidden = block.contract(functional.gelu(block.expand(attended)))
    second = functional.layer_norm(hidden, (8,), *_norm(block.norm), eps=1e-5)  # no "+ attended"
    assert torch.allclose(transformer(ids, items), first + second, atol=1e-5)
    two = prepared(layers=2).transformer.eval()
    assert torch.allclose(two(ids, items, last_only=True), two(ids, items)[:, -1], atol=1e-5)


def _norm(norm: torch.nn.LayerNorm) -> tuple[torch.Tensor, torch.Tensor]:
    return norm.weight, norm.bias


def test_scores_use_the_full_graph_whatever_the_masking():
    built = prepared(mask_candidates=2, mask_depth=1, **NO_DROPOUT)
    built.loss(tiny_batch())  # masks some edges
    built.eval()
    adjacency = dense(built.graph_rows, built.graph_cols, built.graph_values, VOCAB)
    ego = built.item_embedding.detach().double()
    table = (ego + adjacency @ ego + adjacency @ adjacency @ ego).float()
    assert torch.allclose(built.full_table(), table, atol=1e-5)
    ids = tiny_batch()["input"]
    expected = built.transformer(ids, table)[:, -1] @ table.T
    assert torch.allclose(built.score({"input": ids, "users": torch.arange(4)}), expected, atol=1e-5)


# ----- the interface -----
def test_interface_conformance():
    built = model()
    assert built.name == "maerec"
    built.prepare(tiny_sequences())
    built.on_epoch_start(epoch_context())
    built.train()
    losses = built.loss(tiny_batch())
    assert {"next_item", "reconstruction", "mask", "regularisation", "total"} == set(losses)
    assert all(value.ndim == 0 and torch.isfinite(value) for value in losses.values())
    losses["total"].backward()
    assert [name for name, parameter in built.named_parameters() if parameter.grad is None] == []
    # the reconstruction alone trains the decoder and the ego embeddings; the BCE the transformer
    built.zero_grad()
    built.loss(tiny_batch())["reconstruction"].backward()
    assert built.decoder.mlp[0].weight.grad.abs().sum() > 0 and built.item_embedding.grad.abs().sum() > 0
    built.eval()
    batch = {"input": tiny_batch()["input"], "users": torch.arange(4)}
    assert built.score(batch).shape == (4, VOCAB)
    embeddings, intents = built.user_snapshot(batch)
    assert embeddings.shape == (4, 8) and intents is None
    with pytest.raises(ValueError, match="next_seeds"):
        model(next_seeds="walk")


def test_training_is_deterministic_under_a_seed():
    def run(seed: int) -> list[dict[str, float]]:
        built = prepared()
        built.on_epoch_start(epoch_context())
        optimiser = torch.optim.Adam(built.parameters(), lr=1e-2)
        torch.manual_seed(seed)
        trace = []
        for _ in range(12):  # two masking steps
            losses = built.loss(tiny_batch())
            optimiser.zero_grad()
            losses["total"].backward()
            optimiser.step()
            trace.append({name: value.item() for name, value in losses.items()})
        return trace

    assert run(5) == run(5)
    assert run(5) != run(6)

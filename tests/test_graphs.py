"""data/graphs.py: item graphs from training interactions only, checked on hand-made sequences."""

import numpy as np
import pytest
import torch

from elcrec.data.graphs import (
    normalised,
    symmetrised,
    top_k_per_row,
    transition_counts,
    without_diagonal,
)
from elcrec.data.sequences import SequenceData

VOCAB = 7  # items 1..5, the mask id 6


def hand_made() -> SequenceData:
    # user 1: 1 2 3 1 2; user 2: 2 3 (nothing links 3 of user 2 to user 3's 4); user 3: 4 4 5
    return SequenceData.from_sequences([np.array([1, 2, 3, 1, 2]), np.array([2, 3]), np.array([4, 4, 5])])


def edges(graph: torch.Tensor) -> dict[tuple[int, int], float]:
    graph = graph.coalesce()
    return {(int(a), int(b)): float(v) for (a, b), v in zip(graph.indices().T, graph.values(), strict=True)}


def test_transition_counts_count_consecutive_items_within_each_user():
    graph = transition_counts(hand_made(), VOCAB)
    assert graph.shape == (VOCAB, VOCAB) and graph.dtype == torch.float32
    assert edges(graph) == {(1, 2): 2.0, (2, 3): 2.0, (3, 1): 1.0, (4, 4): 1.0, (4, 5): 1.0}


def test_no_validation_or_test_item_enters_a_graph_built_from_the_split():
    # the last two items of every user are the validation and test targets
    full = SequenceData.from_sequences([np.array([1, 2, 3, 4, 5]), np.array([2, 3, 1, 5, 4])])
    split = full.split(max_len=2)  # the graph uses the whole training part, not the cut inputs
    graph = transition_counts(split.train_sequences, VOCAB)
    assert edges(graph) == {(1, 2): 1.0, (2, 3): 2.0, (3, 1): 1.0}
    assert not {4, 5} & set(graph.coalesce().indices().flatten().tolist())


def test_symmetrised_and_without_diagonal():
    graph = symmetrised(transition_counts(hand_made(), VOCAB))
    assert edges(graph)[(2, 1)] == 2.0 and edges(graph)[(1, 3)] == 1.0 and edges(graph)[(4, 4)] == 2.0
    assert (4, 4) not in edges(without_diagonal(graph))
    assert torch.equal(graph.to_dense(), graph.to_dense().T)


def test_normalisations_match_a_dense_hand_computation():
    graph = symmetrised(transition_counts(hand_made(), VOCAB))
    dense = graph.to_dense().double()
    degree = dense.sum(1)
    inverse_root = torch.where(degree > 0, degree.pow(-0.5), torch.zeros_like(degree))
    expected_sym = inverse_root[:, None] * dense * inverse_root[None, :]
    assert torch.allclose(normalised(graph, "sym").to_dense().double(), expected_sym, atol=1e-6)
    inverse = torch.where(degree > 0, 1 / degree, torch.zeros_like(degree))
    assert torch.allclose(normalised(graph, "row").to_dense().double(), inverse[:, None] * dense, atol=1e-6)
    assert normalised(graph, "row").to_dense()[1:6].sum(1).tolist() == pytest.approx([1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="normalisation"):
        normalised(graph, "col")


def test_top_k_keeps_the_largest_per_row_with_ties_to_the_smaller_column():
    dense = torch.tensor([[0, 3, 1, 3, 2], [0, 0, 0, 0, 0], [5, 4, 0, 0, 1]], dtype=torch.float32)
    kept = top_k_per_row(dense.to_sparse(), 2).to_dense()
    assert kept.tolist() == [[0, 3, 0, 3, 0], [0, 0, 0, 0, 0], [5, 4, 0, 0, 0]]
    assert top_k_per_row(dense.to_sparse(), 10).to_dense().tolist() == dense.tolist()


def test_within_distance_links_items_up_to_that_many_positions_apart_in_both_directions():
    from elcrec.data.graphs import within_distance

    graph = within_distance(hand_made(), VOCAB, 2)
    # user 1 (1 2 3 1 2): gap 1: 1-2, 2-3, 3-1, 1-2; gap 2: 1-3, 2-1, 3-2; user 2 (2 3): 2-3;
    # user 3 (4 4 5): gap 1: 4-4, 4-5; gap 2: 4-5. Every pair counted in both directions.
    expected = {(1, 2): 3.0, (2, 3): 3.0, (1, 3): 2.0, (4, 4): 2.0, (4, 5): 2.0}
    expected |= {(b, a): v for (a, b), v in expected.items()}
    assert edges(graph) == expected
    one = within_distance(hand_made(), VOCAB, 1)
    assert torch.equal(one.to_dense(), symmetrised(transition_counts(hand_made(), VOCAB)).to_dense())
    # a gap longer than every sequence adds nothing
    assert torch.equal(
        within_distance(hand_made(), VOCAB, 9).to_dense(), within_distance(hand_made(), VOCAB, 4).to_dense()
    )
    with pytest.raises(ValueError, match="distance"):
        within_distance(hand_made(), VOCAB, 0)


def test_item_cosine_similarity_is_the_cosine_of_user_count_columns():
    from elcrec.data.graphs import item_cosine_similarity

    graph = item_cosine_similarity(hand_made(), VOCAB)
    # user x item counts: user 1 has 1:2, 2:2, 3:1; user 2 has 2:1, 3:1; user 3 has 4:2, 5:1
    counts = torch.zeros(3, VOCAB, dtype=torch.float64)
    for user, item, count in [(0, 1, 2), (0, 2, 2), (0, 3, 1), (1, 2, 1), (1, 3, 1), (2, 4, 2), (2, 5, 1)]:
        counts[user, item] = count
    norms = counts.norm(dim=0)
    expected = (counts.T @ counts) / torch.where(norms > 0, norms, 1)[:, None] / torch.where(norms > 0, norms, 1)
    assert torch.allclose(graph.to_dense().double(), expected, atol=1e-6)
    # by hand: cos(1, 2) = (2*2) / (2 * sqrt(5)); cos(2, 3) = (2*1 + 1*1) / (sqrt(5) * sqrt(2)); 1 and 4 share no user
    assert edges(graph)[(1, 2)] == pytest.approx(4 / (2 * 5**0.5))
    assert edges(graph)[(2, 3)] == pytest.approx(3 / (5**0.5 * 2**0.5))
    assert (1, 4) not in edges(graph) and (6, 6) not in edges(graph)  # the mask id 6 has no interaction
    assert all(edges(graph)[(item, item)] == pytest.approx(1.0) for item in range(1, 6))


def test_with_diagonal_replaces_every_self_loop_except_the_padding_row():
    from elcrec.data.graphs import with_diagonal

    graph = with_diagonal(symmetrised(transition_counts(hand_made(), VOCAB)), 1.0)
    expected = {key: value for key, value in edges(symmetrised(transition_counts(hand_made(), VOCAB))).items()}
    expected[(4, 4)] = 1.0  # was 2 (the repeat 4 4, both directions)
    expected |= {(item, item): 1.0 for item in range(1, VOCAB)}
    assert edges(graph) == expected and (0, 0) not in edges(graph)

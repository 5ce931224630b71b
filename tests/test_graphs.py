"""data/graphs.py: item graphs from training interactions only, checked on hand-made sequences."""

import numpy as np
import pytest
import torch

from elcrec.data.graphs import (
    normalised,
    symmetrised,
    top_k_per_row,
    transition_counts,
    within_hops,
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


def test_within_hops_is_reachability_in_at_most_that_many_steps():
    chain = torch.zeros(5, 5)
    for a in range(4):
        chain[a, a + 1] = 3.0  # 0 -> 1 -> 2 -> 3 -> 4
    two = within_hops(chain.to_sparse(), 2).to_dense()
    assert set(map(tuple, two.nonzero().tolist())) == {(0, 1), (1, 2), (2, 3), (3, 4), (0, 2), (1, 3), (2, 4)}
    assert set(two.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(within_hops(chain.to_sparse(), 1).to_dense(), (chain > 0).float())

"""models/dcrec_graphs.py: DCRec's transition and similarity graphs by hand and against the official
weights, the official row order of the similarity loop, and the GCN propagation and edge dropout
against DGL's GraphConv formula."""

import math

import numpy as np
import pytest
import torch
from model_helpers import VOCAB, tiny_sequences

import elcrec.models.dcrec_graphs as dcrec_graphs
from elcrec.data.sequences import SequenceData


def edges(graph: torch.Tensor) -> dict[tuple[int, int], float]:
    graph = graph.coalesce()
    return {(int(a), int(b)): float(v) for (a, b), v in zip(graph.indices().T, graph.values(), strict=True)}


def test_adjacency_graph_matches_the_official_weights_by_hand():
    graph = dcrec_graphs.adjacency_graph(SequenceData.from_sequences([np.array([1, 2, 3]), np.array([3, 2])]), 6)
    # official counts: A[1,2] = 2 (1 2 once, appended twice per direction), A[2,3] = 4 (2 3 and 3 2);
    # diagonal 1; row sums 3, 7, 5, 1, 1 for items 1..5
    expected = {(1, 2): 2 / math.sqrt(3 * 7), (2, 3): 4 / math.sqrt(7 * 5)}
    expected |= {(b, a): v for (a, b), v in expected.items()}
    expected |= {(1, 1): 1 / 3, (2, 2): 1 / 7, (3, 3): 1 / 5, (4, 4): 1.0, (5, 5): 1.0}
    assert edges(graph) == pytest.approx(expected)


def test_similarity_graph_keeps_the_item_and_its_nearest_neighbours_row_normalised():
    sequences = SequenceData.from_sequences([np.array([1, 2]), np.array([1, 2, 3]), np.array([3, 4])])
    graph, out_degree = dcrec_graphs.similarity_graph(sequences, 6, neighbours=1)
    # columns over users: x1 = x2 = (1, 1, 0), x3 = (0, 1, 1), x4 = (0, 0, 1)
    # cos(1, 2) = 1, cos(1, 3) = cos(2, 3) = 1/2, cos(3, 4) = 1/sqrt(2); top 2 per row, ties to the smaller id
    root = 1 / math.sqrt(2)
    expected = {(1, 1): 0.5, (1, 2): 0.5, (2, 1): 0.5, (2, 2): 0.5}
    expected |= {(3, 3): 1 / (1 + root), (3, 4): root / (1 + root), (4, 4): 1 / (1 + root), (4, 3): root / (1 + root)}
    assert edges(graph) == pytest.approx(expected)
    assert out_degree.tolist() == [2] * 6  # argpartition always stores neighbours + 1 columns


def test_official_row_order_follows_the_shrinking_slice_of_its_loop():
    # size 10, blocks of 2: rows 0-1, then 2-3 (slice from 2), then 6-7 (slice from 2 + 4), tail 8-9
    assert dcrec_graphs.official_row_order(10, chunk=2).tolist() == [0, 1, 2, 3, 6, 7, 8, 9]
    assert dcrec_graphs.official_row_order(12, chunk=256).tolist() == list(range(12))
    assert len(dcrec_graphs.official_row_order(12103)) == 2887  # Beauty's vocabulary


def test_official_similarity_rows_hold_other_items_lists():
    sequences = SequenceData.from_sequences([np.array([1, 2, 3, 4]), np.array([5, 6, 7, 8]), np.array([6, 8])])
    aligned, aligned_degree = dcrec_graphs.similarity_graph(sequences, 10, 1, rows="aligned", chunk=2)
    official, official_degree = dcrec_graphs.similarity_graph(sequences, 10, 1, rows="official", chunk=2)
    dense_aligned, dense_official = aligned.to_dense(), official.to_dense()
    for graph_row, item in enumerate([0, 1, 2, 3, 6, 7, 8, 9]):
        assert torch.equal(dense_official[graph_row], dense_aligned[item])
    assert dense_official[8:].abs().sum() == 0 and official_degree.tolist() == [2] * 8 + [0, 0]
    assert aligned_degree.tolist() == [2] * 10
    with pytest.raises(ValueError, match="similarity_rows"):
        dcrec_graphs.similarity_graph(sequences, 10, 1, rows="shuffled")


def test_gcn_propagation_is_dgl_graphconv_with_self_loops_by_hand():
    # one edge 0 -> 1 of weight 0.5; self-loops of weight 1 make out-degrees (2, 1), in-degrees (1, 2)
    matrix = dcrec_graphs.propagation_matrix(
        torch.tensor([0]), torch.tensor([1]), torch.tensor([0.5]), torch.tensor([1, 0]), torch.tensor([0, 1])
    )
    root = 1 / math.sqrt(2)
    assert torch.allclose(matrix.to_dense(), torch.tensor([[root, 0.0], [0.5 / 2, root]]))
    mean = dcrec_graphs.light_propagation(torch.tensor([[1.0], [0.0]]), matrix)
    # h = (1, 0), Ph = (root, 1/4), P^2 h = (1/2, root/4 + root/4)
    assert mean.flatten().tolist() == pytest.approx([(1 + root + 0.5) / 3, (0.25 + root / 2) / 3])
    # DGL <= 0.9.0 filled the added self-loops with 0: they count in the degrees but carry nothing
    unweighted = dcrec_graphs.propagation_matrix(
        torch.tensor([0]),
        torch.tensor([1]),
        torch.tensor([0.5]),
        torch.tensor([1, 0]),
        torch.tensor([0, 1]),
        loop_weight=0.0,
    )
    assert torch.allclose(unweighted.to_dense(), torch.tensor([[0.0, 0.0], [0.5 / 2, 0.0]]))


def test_edge_dropout_zeroes_drawn_edges_and_keeps_the_degrees():
    source, destination = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
    weight, degree = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1, 1, 1])
    dropped = dcrec_graphs.propagation_matrix(
        source, destination, weight, degree, degree, 0.5, torch.Generator().manual_seed(3)
    )
    drawn = torch.randint(6, (3,), generator=torch.Generator().manual_seed(3))  # int(0.5 * 6 edges) with replacement
    kept = torch.cat([weight, torch.ones(3)]).index_fill(0, drawn, 0.0)
    expected = torch.zeros(3, 3)
    for index, (a, b) in enumerate(zip([0, 1, 2, 0, 1, 2], [1, 2, 0, 0, 1, 2], strict=True)):
        expected[b, a] += kept[index] / 2  # every degree is 1 + 1 self-loop, dropped edges included
    assert torch.allclose(dropped.to_dense(), expected)


@pytest.mark.parametrize("loop_weight", [1.0, 0.0])
@pytest.mark.parametrize("drop_prob", [0.0, 0.5])
def test_edge_list_propagation_equals_the_reference_formula(drop_prob, loop_weight):
    graph = dcrec_graphs.adjacency_graph(tiny_sequences(), VOCAB)
    edge_list = dcrec_graphs.EdgeList(graph)
    source, destination, weight = edge_list.source, edge_list.destination, edge_list.weight
    degrees = (edge_list.out_degree, edge_list.in_degree)
    fast = edge_list.propagation(None, drop_prob, torch.Generator().manual_seed(4), loop_weight)
    reference = dcrec_graphs.propagation_matrix(
        source, destination, weight, *degrees, drop_prob, torch.Generator().manual_seed(4), loop_weight
    )
    assert torch.allclose(fast.to_dense(), reference.to_dense(), atol=1e-7)
    # the augmented graph: edges removed, degrees and the dropout draws over the kept edges only
    keep = torch.arange(len(source)) % 3 != 0
    fast = edge_list.propagation(keep, drop_prob, torch.Generator().manual_seed(4), loop_weight)
    kept_source, kept_destination = source[keep], destination[keep]
    reference = dcrec_graphs.propagation_matrix(
        kept_source,
        kept_destination,
        weight[keep],
        torch.bincount(kept_source, minlength=VOCAB),
        torch.bincount(kept_destination, minlength=VOCAB),
        drop_prob,
        torch.Generator().manual_seed(4),
        loop_weight,
    )
    assert torch.allclose(fast.to_dense(), reference.to_dense(), atol=1e-7)


def test_replayed_edge_dropout_zeroes_exactly_the_given_edges_and_keeps_the_degrees():
    edge_list = dcrec_graphs.EdgeList(
        torch.sparse_coo_tensor(
            torch.tensor([[0, 1, 2], [1, 2, 0]]), torch.tensor([1.0, 2.0, 3.0]), (3, 3), check_invariants=True
        )
    )
    # full list: edges (0,1) (1,2) (2,0), then the self-loops of nodes 0, 1, 2; edge 1 twice, node 2's loop
    replayed = edge_list.propagation(None, 0.5, None, 1.0, dropped=torch.tensor([1, 1, 5]))
    kept = torch.tensor([1.0, 0.0, 3.0, 1.0, 1.0, 0.0])
    expected = torch.zeros(3, 3)
    for index, (a, b) in enumerate(zip([0, 1, 2, 0, 1, 2], [1, 2, 0, 0, 1, 2], strict=True)):
        expected[b, a] += kept[index] / 2  # every degree 1 + 1 self-loop, the dropped edges counted
    assert torch.allclose(replayed.to_dense(), expected)
    # with `keep`, the indices stay those of the full list; degrees count the kept edges
    keep = torch.tensor([True, False, True])
    replayed = edge_list.propagation(keep, 0.5, None, 1.0, dropped=torch.tensor([2]))
    # (0,1) kept: degrees out 0 = 1 + 1, in 1 = 1 + 1; (2,0) dropped but counted; (1,2) removed
    root = 1 / math.sqrt(2)
    expected = torch.tensor([[1 / 2, 0.0, 0.0], [1 / 2, root, 0.0], [0.0, 0.0, root]])
    assert torch.allclose(replayed.to_dense(), expected)
    # without drop_prob nothing is dropped, whatever is handed over (eval without eval_edge_dropout)
    assert torch.equal(
        edge_list.propagation(None, 0.0, None, 1.0, dropped=torch.tensor([0])).to_dense(),
        edge_list.propagation(None, 0.0).to_dense(),
    )

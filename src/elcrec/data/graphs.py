"""Item graphs for the graph baselines (DCRec, MAERec), built from training interactions only.

Every builder takes a `SequenceData` of each user's training interactions s_1..s_{n-2}
(`Split.train_sequences`, which the training loop hands to `RecommenderModel.prepare`), so no
validation or test item can enter a graph. Graphs are built once per run, with scipy for the
construction, and returned as coalesced `torch.sparse_coo` float32 tensors of shape
[vocab, vocab] (row and column 0, the padding id, stay empty), which move to the training device
with the model and multiply with `torch.sparse.mm`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch

from elcrec.data.sequences import SequenceData

NORMALISATIONS = ("sym", "row")


def sparse(indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A coalesced sparse COO tensor, its invariants checked (once per run: graphs are built once)."""
    return torch.sparse_coo_tensor(indices, values, tuple(shape), check_invariants=True).coalesce()


def to_torch(matrix: scipy.sparse.spmatrix) -> torch.Tensor:
    coo = scipy.sparse.coo_matrix(matrix)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return sparse(indices, values, coo.shape)


def to_scipy(graph: torch.Tensor) -> scipy.sparse.csr_matrix:
    graph = graph.coalesce()
    rows, cols = graph.indices().numpy()
    return scipy.sparse.csr_matrix((graph.values().numpy().astype(np.float64), (rows, cols)), shape=tuple(graph.shape))


def consecutive_pairs(sequences: SequenceData) -> tuple[np.ndarray, np.ndarray]:
    """(item, next item) for every two consecutive interactions of the same user."""
    items, offsets = sequences.items, sequences.offsets
    follows = np.ones(len(items), dtype=bool)
    follows[offsets[:-1][offsets[:-1] < len(items)]] = False  # a user's first item follows no item
    positions = np.flatnonzero(follows)
    return items[positions - 1], items[positions]


def transition_counts(sequences: SequenceData, vocab_size: int) -> torch.Tensor:
    """[vocab, vocab]: entry (a, b) = how often item b directly followed item a in one user's
    training interactions (a == b included: a repeated item is a transition too)."""
    sources, targets = consecutive_pairs(sequences)
    counts = scipy.sparse.coo_matrix(
        (np.ones(len(sources)), (sources, targets)), shape=(vocab_size, vocab_size)
    ).tocsr()  # duplicates are summed
    return to_torch(counts)


def symmetrised(graph: torch.Tensor) -> torch.Tensor:
    """A + A^T: an undirected graph whose weight counts both directions."""
    return (graph + graph.t()).coalesce()


def without_diagonal(graph: torch.Tensor) -> torch.Tensor:
    graph = graph.coalesce()
    keep = graph.indices()[0] != graph.indices()[1]
    return sparse(graph.indices()[:, keep], graph.values()[keep], graph.shape)


def normalised(graph: torch.Tensor, mode: str = "sym") -> torch.Tensor:
    """`sym`: D^-1/2 A D^-1/2 (the GCN propagation of LightGCN-style encoders); `row`: D^-1 A.
    D holds the row sums; rows (and, for `sym`, columns) of degree 0 stay 0."""
    if mode not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {mode!r}")
    graph = graph.coalesce()
    rows, cols = graph.indices()
    degree = torch.zeros(graph.shape[0], dtype=graph.values().dtype).index_add_(0, rows, graph.values())
    inverse = torch.where(degree > 0, degree.pow(-0.5 if mode == "sym" else -1.0), torch.zeros_like(degree))
    values = graph.values() * inverse[rows] * (inverse[cols] if mode == "sym" else 1.0)
    return sparse(graph.indices(), values, graph.shape)


def top_k_per_row(graph: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest entries of every row (ties: the smaller column first); the rest dropped."""
    if k < 1:
        raise ValueError(f"top_k_per_row needs k >= 1, got {k}")
    graph = graph.coalesce()
    rows, cols = graph.indices().numpy()
    values = graph.values().numpy()
    order = np.lexsort((cols, -values, rows))
    sorted_rows = rows[order]
    row_starts = np.searchsorted(sorted_rows, sorted_rows, side="left")
    keep = order[(np.arange(len(order)) - row_starts) < k]
    keep.sort()
    return sparse(graph.indices()[:, keep], graph.values()[keep], graph.shape)


def within_distance(sequences: SequenceData, vocab_size: int, distance: int) -> torch.Tensor:
    """Symmetric [vocab, vocab]: entry (a, b) = how often a and b occur 1..`distance` positions
    apart in one user's training interactions, both orders counted (a == b when an item recurs).

    MAERec's item graph (HKUDS/MAERec README.md `construct_graphs`, distance 3; construct.py:13-18):
    its multi-hop neighbourhoods are items near each other in a sequence, not paths of a graph.
    """
    if distance < 1:
        raise ValueError(f"within_distance needs distance >= 1, got {distance}")
    items, offsets = sequences.items, sequences.offsets
    position = np.arange(len(items)) - np.repeat(offsets[:-1], np.diff(offsets))  # index within the user
    sources, targets = [], []
    for gap in range(1, distance + 1):
        later = np.flatnonzero(position >= gap)
        sources += [items[later - gap], items[later]]
        targets += [items[later], items[later - gap]]
    sources, targets = np.concatenate(sources), np.concatenate(targets)
    counts = scipy.sparse.coo_matrix(
        (np.ones(len(sources)), (sources, targets)), shape=(vocab_size, vocab_size)
    ).tocsr()  # duplicates are summed
    return to_torch(counts)


def item_cosine_similarity(sequences: SequenceData, vocab_size: int) -> torch.Tensor:
    """[vocab, vocab]: the cosine similarity of two items' columns in the user x item matrix of
    interaction counts (an item a user repeats counts twice), DCRec's co-occurrence similarity.

    Only items that share a user get an entry, so the matrix stays sparse (X^T X instead of the
    dense item x item product); every item with an interaction has its diagonal entry 1.
    """
    users = np.repeat(np.arange(sequences.n_users), sequences.lengths)
    counts = scipy.sparse.csr_matrix(
        (np.ones(len(users)), (users, sequences.items)), shape=(sequences.n_users, vocab_size)
    )  # duplicates are summed
    gram = (counts.T @ counts).tocoo()
    norms = np.sqrt(gram.diagonal())
    cosine = gram.data / (norms[gram.row] * norms[gram.col])
    return to_torch(scipy.sparse.coo_matrix((cosine, (gram.row, gram.col)), shape=gram.shape))


def with_diagonal(graph: torch.Tensor, value: float = 1.0) -> torch.Tensor:
    """Every diagonal entry (i, i) of rows 1..vocab-1 set to `value`, whatever was there (a
    self-loop for every item, seen or not, as scipy's `setdiag`); the padding row 0 stays empty."""
    graph = without_diagonal(graph)
    loops = torch.arange(1, graph.shape[0])
    indices = torch.cat([graph.indices(), torch.stack([loops, loops])], dim=1)
    values = torch.cat([graph.values(), torch.full((len(loops),), float(value), dtype=graph.values().dtype)])
    return sparse(indices, values, graph.shape)

"""DCRec's item graphs (docs: models/dcrec.py's docstring): the transition (adjacency) and similarity
graphs as the official run_DCRec.py builds them, as edge lists, and the parameter-free GCN over them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from elcrec.data.graphs import (
    item_cosine_similarity,
    normalised,
    sparse,
    symmetrised,
    top_k_per_row,
    transition_counts,
    with_diagonal,
)
from elcrec.data.sequences import SequenceData

SIMILARITY_ROWS = ("official", "aligned")
OFFICIAL_CHUNK = 256  # the row block of run_DCRec.py's top-k loop
GCN_LAYERS = 2  # dcrec.py:121


def without_last_items(sequences: SequenceData) -> SequenceData:
    """Every user's sequence without its last item: s_1..s_{n-3} from the training part s_1..s_{n-2}."""
    lengths = sequences.lengths
    keep = np.ones(len(sequences.items), dtype=bool)
    keep[sequences.offsets[1:][lengths > 0] - 1] = False
    offsets = np.concatenate([[0], np.cumsum(np.maximum(lengths - 1, 0))])
    return SequenceData(user_ids=sequences.user_ids, items=sequences.items[keep], offsets=offsets)


def adjacency_graph(sequences: SequenceData, vocab_size: int) -> torch.Tensor:
    """The official transition graph (run_DCRec.py:24-90): A = 2 (C + C^T) off the diagonal, where C
    counts consecutive pairs (each pair is appended twice per direction, lines 47-57), the diagonal
    set to 1 for every item (line 76), then D^-1/2 A D^-1/2 with D the row sums (lines 77-84)."""
    doubled = symmetrised(transition_counts(sequences, vocab_size)) * 2.0
    return normalised(with_diagonal(doubled, 1.0), "sym")


def official_row_order(size: int, chunk: int = OFFICIAL_CHUNK) -> np.ndarray:
    """The rows whose top-k lists the official similarity graph stores, in the order it stores them.

    run_DCRec.py:121-131 slices `similarity = similarity[i:]` inside a loop whose `i` also grows, so
    block m starts at row chunk * m (m + 1) / 2 of the original matrix, and the loop condition reads
    the shrinking slice; a tail block follows. The lists are then written to graph rows 0, 1, 2, ...
    (lines 136-140): graph row r holds the neighbours of item order[r], and rows past the end hold
    none. Rows below 2 * chunk are in place; on Beauty 2,887 of 12,103 rows get a list.
    """
    rows = np.arange(size)
    remaining, taken, start = rows, [], 0
    while start < len(remaining):
        remaining = remaining[start:]
        taken.append(remaining[:chunk])
        start += chunk
    taken.append(remaining[chunk:])
    return np.concatenate(taken)


def similarity_graph(
    sequences: SequenceData, vocab_size: int, neighbours: int, rows: str = "official", chunk: int = OFFICIAL_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official co-occurrence similarity graph (run_DCRec.py:92-150) and its rows' structural
    out-degrees.

    Each row keeps its `neighbours` + 1 most cosine-similar items (the item itself among them: its
    own similarity is 1), weights divided by their row sum (line 142). `rows="official"` stores the
    lists as the official loop does (`official_row_order`); "aligned" gives each item its own list.
    np.argpartition always picks neighbours + 1 columns, padding short rows with zero-similarity
    items, so every row that receives a list has that many edges in the DGL graph, which its
    GraphConv normalisation counts; the zero-weight edges carry nothing and their columns are
    arbitrary (argpartition among ties), so only their out-degree is kept here.
    """
    if rows not in SIMILARITY_ROWS:
        raise ValueError(f"similarity_rows must be one of {SIMILARITY_ROWS}, got {rows!r}")
    graph = normalised(top_k_per_row(item_cosine_similarity(sequences, vocab_size), neighbours + 1), "row")
    out_degree = torch.full((vocab_size,), neighbours + 1, dtype=torch.long)
    if rows == "aligned":
        return graph, out_degree
    order = torch.from_numpy(official_row_order(vocab_size, chunk))
    target_row = torch.full((vocab_size,), -1, dtype=torch.long)
    target_row[order] = torch.arange(len(order))  # graph row that receives item's list
    source, column = graph.indices()
    moved = target_row[source] >= 0
    indices = torch.stack([target_row[source[moved]], column[moved]])
    out_degree[len(order) :] = 0
    return sparse(indices, graph.values()[moved], graph.shape), out_degree


class EdgeList(nn.Module):
    """A fixed item graph (edge source -> destination with its weight) and its structural degrees,
    held as non-persistent buffers: rebuilt from the data, never saved, moved by `.to`.

    `propagation` gives the same matrix as `propagation_matrix` without sorting the edges on every
    call: the coalesced layout of the edges plus the self-loops (an item's diagonal edge and its
    added self-loop share a slot) is computed once, and each call only sums values into it.
    """

    def __init__(self, graph: torch.Tensor, out_degree: torch.Tensor | None = None) -> None:
        super().__init__()
        graph = graph.coalesce()
        source, destination = graph.indices()
        size = graph.shape[0]
        degree = torch.bincount(source, minlength=size) if out_degree is None else out_degree
        loops = torch.arange(size)
        all_source, all_destination = torch.cat([source, loops]), torch.cat([destination, loops])
        slots, slot = torch.unique(all_destination * size + all_source, return_inverse=True)  # row-major
        for name, tensor in [
            ("source", source.clone()),
            ("destination", destination.clone()),
            ("weight", graph.values().float().clone()),
            ("out_degree", degree.clone()),
            ("in_degree", torch.bincount(destination, minlength=size)),
            ("all_source", all_source),
            ("all_destination", all_destination),
            ("slot", slot),
            ("slot_indices", torch.stack([slots // size, slots % size])),
        ]:
            self.register_buffer(name, tensor, persistent=False)

    @property
    def size(self) -> int:
        return len(self.out_degree)

    def keys(self) -> torch.Tensor:
        return self.source * self.size + self.destination

    def propagation(
        self,
        keep: torch.Tensor | None = None,
        drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
        loop_weight: float = 1.0,
        dropped: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The GCN's propagation matrix (see `propagation_matrix`); `keep` selects edges, the
        structural degrees and the edge dropout then count the kept ones only.

        `dropped` replays an edge dropout instead of drawing one (with `drop_prob` > 0): the indices
        of the dropped edges in the full list, the graph's edges (as `source`, `destination`) then
        one self-loop per node, each a kept edge when `keep` is given; repeats allowed."""
        loops = torch.full((self.size,), loop_weight, dtype=self.weight.dtype, device=self.weight.device)
        weight = torch.cat([self.weight, loops])
        out_degree, in_degree, candidates = self.out_degree, self.in_degree, None
        if keep is not None:
            kept = torch.cat([keep, torch.ones(self.size, dtype=torch.bool, device=keep.device)])
            weight = torch.where(kept, weight, torch.zeros_like(weight))
            out_degree = torch.bincount(self.source[keep], minlength=self.size)
            in_degree = torch.bincount(self.destination[keep], minlength=self.size)
            candidates = kept.nonzero(as_tuple=True)[0]
        if drop_prob > 0 and dropped is not None:
            weight = weight.index_fill(0, dropped.to(weight.device), 0.0)
        elif drop_prob > 0:
            available = len(weight) if candidates is None else len(candidates)
            draw_on = weight.device if generator is None else torch.device("cpu")
            dropped = torch.randint(available, (int(drop_prob * available),), generator=generator, device=draw_on)
            dropped = dropped.to(weight.device)
            weight = weight.index_fill(0, dropped if candidates is None else candidates[dropped], 0.0)
        out_scale = (out_degree + 1).clamp(min=1).to(weight.dtype).pow(-0.5)
        in_scale = (in_degree + 1).clamp(min=1).to(weight.dtype).pow(-0.5)
        values = weight * out_scale[self.all_source] * in_scale[self.all_destination]
        summed = values.new_zeros(self.slot_indices.shape[1]).index_add(0, self.slot, values)
        return torch.sparse_coo_tensor(
            self.slot_indices, summed, (self.size, self.size), is_coalesced=True, check_invariants=False
        )


def propagation_matrix(
    source: torch.Tensor,
    destination: torch.Tensor,
    weight: torch.Tensor,
    out_degree: torch.Tensor,
    in_degree: torch.Tensor,
    drop_prob: float = 0.0,
    generator: torch.Generator | None = None,
    loop_weight: float = 1.0,
) -> torch.Tensor:
    """[size, size] sparse P with P[j, i] = w_ij / sqrt(out_i * in_j), DGL GraphConv(norm="both")
    with edge weights after `dgl.add_self_loop` (dcrec.py:118): a self-loop of weight `loop_weight`
    per node is appended (1: DGL >= 0.9.1's fill_data; 0: DGL <= 0.9.0) and the degrees are edge
    counts, self-loops included, not weight sums. Edge dropout as dcrec.py:95-107: int(drop_prob *
    edges) edge indices drawn with replacement (self-loops included) get weight 0; the degrees keep
    counting them."""
    size = len(out_degree)
    loops = torch.arange(size, device=source.device)
    source, destination = torch.cat([source, loops]), torch.cat([destination, loops])
    weight = torch.cat([weight, torch.full((size,), loop_weight, dtype=weight.dtype, device=weight.device)])
    if drop_prob > 0:
        count = int(drop_prob * len(weight))
        draw_on = weight.device if generator is None else torch.device("cpu")
        dropped = torch.randint(len(weight), (count,), generator=generator, device=draw_on).to(weight.device)
        weight = weight.index_fill(0, dropped, 0.0)
    out_scale = (out_degree + 1).clamp(min=1).to(weight.dtype).pow(-0.5)
    in_scale = (in_degree + 1).clamp(min=1).to(weight.dtype).pow(-0.5)
    values = weight * out_scale[source] * in_scale[destination]
    indices = torch.stack([destination, source])
    return torch.sparse_coo_tensor(indices, values, (size, size), check_invariants=False).coalesce()


def light_propagation(features: torch.Tensor, matrix: torch.Tensor, layers: int = GCN_LAYERS) -> torch.Tensor:
    """The mean of features, P features, P^2 features, ... (dcrec.py:120-125). The official line 123
    applies a dropout whose result it discards, so there is none."""
    outputs, state = [features], features
    for _ in range(layers):
        state = torch.sparse.mm(matrix, state)
        outputs.append(state)
    return torch.stack(outputs).mean(dim=0)

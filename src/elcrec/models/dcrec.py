"""DCRec (Yang et al., "Debiased Contrastive Learning for Sequential Recommendation", WWW 2023) as
its official code runs: HKUDS/DCRec at 23382332, `recbole/model/sequential_recommender/dcrec.py`
(cited as dcrec.py:line) and `run_DCRec.py` (the graphs and the Beauty settings).

Every training example is a prefix of a user's training input and the item that follows it: the
official code expands each training sequence into all its prefixes (run_DCRec.py:152-184,
`sequential_augmentation`), which are exactly the positions of our training input (cut to its last
50 items, prefix by prefix, as the official prefixes of its cut sequences). A step is 2,048 shuffled
examples (`batch_unit: prefixes`, data/batches.py `prefix_batches`), so the graph augmentation drops
the transitions of the step's 1,900-odd distinct users and the conformity weights' batch statistics
see a mixed batch, as RecBole's shuffled loader gives; Beauty's learning rate decays x0.2 every 30
epochs (StepLR). With `batch_unit: users` a row is a user and all its prefixes are its examples.

Three views of an example's last item i and a fusion of them (dcrec.py:338-426):
- the sequence view: the prefix through a *bidirectional* post-LN Transformer, output at its last
  item (dcrec.py:241-253, 267-286). It is our backbone with `causal=False`, fed as RecBole feeds it:
  items first, padding after, so position 0 is the first item (PROTOCOL.md's SASRec layout puts
  the last item at position 49); each prefix is encoded on its own, so nothing after it is seen;
- the transition-graph view: a parameter-free two-layer GCN (DGL `GraphConv`, norm "both", edge
  weights) over the item adjacency graph, the mean of its three layers plus its input, LayerNorm
  (dcrec.py:110-126, 261-265);
- the similarity-graph view: the same GCN over each item's `sim_group` most cosine-similar items;
- fusion: a softmax attention over the three views (dcrec.py:409-417), scored against the plain
  item embeddings with a full-softmax cross-entropy (dcrec.py:419-421).

The debiasing (dcrec.py:210-226, 32-70, 73-92, 362-402): the batch users' own transitions are
removed from the adjacency graph; how much item i's representation agrees with and without them
(three cosines through a sigmoid, min-max scaled over the batch, rescaled to mean `weight_mean`)
is its conformity weight w; a KL term pulls the sorted weights towards sorted N(weight_mean, 0.1)
draws; the graph contrastive loss is coefficient * mean(w * CL(sequence, transition) +
(max w - w) * CL(transition, similarity)). Total = cross-entropy + graph CL + KL
(the RecBole trainer sums the returned tuple).

Scoring (dcrec.py:428-455) fuses the sequence view with the two graph views of the history's last
item, built on the evaluation graphs, and scores every vocabulary row with the plain item
embeddings (the official evaluation samples 100 popularity negatives; we rank all rows, protocol).

Graphs are built once, in `prepare`, from the training interactions s_1..s_{n-2}: the training
graphs from every user's training input s_1..s_{n-3} (the official training lines' histories,
without their targets, run_DCRec.py:24-150), the evaluation graphs from s_1..s_{n-2} (the official
builds them from the test histories s_1..s_{n-1}; the validation item is not ours to use).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from elcrec.data.graphs import consecutive_pairs
from elcrec.data.sequences import SequenceData
from elcrec.models.backbone import LAYER_NORM_EPS, Dropout
from elcrec.models.base import Batch, RecommenderModel, backbone_from
from elcrec.models.dcrec_graphs import (
    SIMILARITY_ROWS,
    EdgeList,
    adjacency_graph,
    light_propagation,
    similarity_graph,
    without_last_items,
)
from elcrec.models.registry import register

SHORT_PREFIX_WEIGHT = 0.5  # dcrec.py:367: the conformity weight of one-item prefixes, hard-coded
PRIOR_STD = 0.1  # dcrec.py:369
EVAL_SEED = 20230430  # the evaluation-time edge dropout's own seed (see DCRec.graph_view)
# optional batch entries that replay another run's draws (elcrec.official.dcrec) instead of drawing:
# the dropped edges of each GCN call (EdgeList.propagation `dropped`; in `score` the evaluation graphs')
# and the KL prior's N(weight_mean, 0.1) draws, one per example
DROPPED = {graph: f"dropped_{graph}" for graph in ("adjacency", "similarity", "augmented")}
WEIGHT_PRIOR = "weight_prior"


def gather_ranges(starts: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(group of every element, flat index starts[g] + k for k < counts[g]), concatenated over groups."""
    group = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return group, starts[group] + torch.arange(len(group), device=counts.device) - first


def rank_within_groups(groups: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Every element's rank (from 0) among the elements of its group, by ascending key."""
    order = torch.argsort(keys)
    order = order[torch.argsort(groups[order], stable=True)]
    ordered_groups = groups[order]
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(order), device=groups.device) - torch.searchsorted(ordered_groups, ordered_groups)
    return ranks


def segment_mean(features: torch.Tensor, rows: torch.Tensor, groups: torch.Tensor, count: int) -> torch.Tensor:
    """[count, d]: the mean of features[rows] per group; a group without rows gets the zero vector."""
    sums = features.new_zeros(count, features.shape[1]).index_add(0, groups, features[rows])
    sizes = torch.bincount(groups, minlength=count).clamp(min=1)
    return sums / sizes[:, None].to(features.dtype)


def neighbour_readouts(
    nodes: torch.Tensor,
    row_starts: torch.Tensor,
    columns: torch.Tensor,
    removed: torch.Tensor,
    vocab_size: int,
    features: torch.Tensor,
    limit: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(civil, foreign) neighbour means of every node, dcrec.py:32-70.

    A node's neighbours are its out-neighbours in the training adjacency graph (itself included:
    the diagonal); `removed` holds the keys a * vocab + b of the batch users' transitions. Foreign
    neighbours are those not removed, `limit` of them drawn uniformly; civil neighbours are all the
    others, i.e. the removed ones and the foreign ones not drawn (the official `all - sampled
    foreign`), `limit` of them drawn. Either set may be empty: the official gives civil the zero
    vector then, and foreign a NaN mean that stops its run (dcrec.py:69, 381); here both get zeros.
    """
    group, flat = gather_ranges(row_starts[nodes], row_starts[nodes + 1] - row_starts[nodes])
    neighbour = columns[flat]
    foreign = ~torch.isin(nodes[group] * vocab_size + neighbour, removed)
    keys = torch.rand(2, len(group), device=nodes.device)
    drawn_foreign = foreign & (rank_within_groups(group * 2 + foreign.long(), keys[0]) < limit)
    civil = ~drawn_foreign
    drawn_civil = civil & (rank_within_groups(group * 2 + civil.long(), keys[1]) < limit)
    count = len(nodes)
    return (
        segment_mean(features, neighbour[drawn_civil], group[drawn_civil], count),
        segment_mean(features, neighbour[drawn_foreign], group[drawn_foreign], count),
    )


def conformity_weights(
    full: torch.Tensor, augmented: torch.Tensor, civil: torch.Tensor, foreign: torch.Tensor, weight_mean: float
) -> torch.Tensor:
    """dcrec.py:210-226: the mean of three cosines (full-graph vs augmented-graph item, full-graph item
    vs its foreign neighbours, civil vs foreign neighbours) through a sigmoid, min-max scaled over the
    batch and rescaled to mean `weight_mean`. A batch whose agreements are all equal (one example)
    makes the official 0/0; it gets `weight_mean` everywhere here (the limit of the rescaling)."""
    agreement = (
        functional.cosine_similarity(full, augmented, eps=1e-12)
        + functional.cosine_similarity(full, foreign, eps=1e-12)
        + functional.cosine_similarity(civil, foreign, eps=1e-12)
    ) / 3
    agreement = torch.sigmoid(agreement)
    spread = agreement.max() - agreement.min()
    if float(spread.detach()) == 0.0:
        return torch.full_like(agreement, weight_mean) + 0 * agreement
    scaled = (agreement - agreement.min()) / spread
    return weight_mean / scaled.mean() * scaled


def weight_prior_kl(prior: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """dcrec.py:25-29 (`cal_kl_1`) on both vectors sorted: KL(p || softmax(w)) summed and divided by
    the batch, p = max(prior, 1e-8) + 1e-8 unnormalised, as F.kl_div(..., "batchmean", log_target)."""
    target = torch.log(prior.sort().values.clamp(min=1e-8) + 1e-8)
    log_input = torch.log_softmax(weights.sort().values + 1e-8, dim=0)
    return functional.kl_div(log_input, target, reduction="batchmean", log_target=True)


def rowwise_info_nce(one: torch.Tensor, two: torch.Tensor, temperature: float) -> torch.Tensor:
    """[n] per-row losses of CLLayer.vanilla_loss (layers.py:83-87): cosine similarities over the
    temperature; row i's positive is two[i], its negatives every row of `two` (the positive included
    in the denominator, no same-view negatives); -log(1e-8 + e^{s_ii} / sum_j e^{s_ij})."""
    similarity = torch.exp(functional.normalize(one) @ functional.normalize(two).T / temperature)
    return -torch.log(1e-8 + similarity.diagonal() / similarity.sum(dim=1))


def attention_fusion(views: torch.Tensor, weights: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """views [3, n, d] -> [n, d]: softmax over the views of (view W) . a (dcrec.py:411-417)."""
    logits = ((views @ weights) * query).sum(dim=-1)
    return (views * torch.softmax(logits, dim=0)[..., None]).sum(dim=0)


def items_first(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded rows -> (rows with the items first and the padding after, as RecBole feeds them;
    lengths), cut to the longest row: with items first the cut changes no position."""
    lengths = (inputs > 0).sum(dim=1)
    width = max(int(lengths.max()), 1) if len(lengths) else 1
    columns = torch.arange(width, device=inputs.device)
    start = inputs.shape[1] - lengths
    taken = inputs.gather(1, (start[:, None] + columns[None, :]).clamp(max=inputs.shape[1] - 1))
    return torch.where(columns[None, :] < lengths[:, None], taken, torch.zeros_like(taken)), lengths


def prefix_examples(inputs: torch.Tensor, targets: torch.Tensor, every_prefix: bool = True) -> dict[str, torch.Tensor]:
    """The official prefix expansion of a batch (run_DCRec.py:152-184): one example per target.

    inputs, targets [b, L] left-padded; the example at (row r, column c) is inputs[r] up to column c,
    items first ("items" [n, width], "lengths"), its last item and its next item ("target"), and
    its user row ("rows"). Without `every_prefix` (a batch of prefix examples), each row's last column only.
    """
    present = targets > 0
    if not every_prefix:
        present = present & (torch.arange(targets.shape[1], device=targets.device) == targets.shape[1] - 1)
    rows, columns = present.nonzero(as_tuple=True)
    first = inputs.shape[1] - (inputs > 0).sum(dim=1)
    lengths = columns - first[rows] + 1
    width = max(int(lengths.max()), 1) if len(lengths) else 1
    offsets = torch.arange(width, device=inputs.device)
    source = (first[rows][:, None] + offsets[None, :]).clamp(max=inputs.shape[1] - 1)
    taken = inputs[rows[:, None], source]
    items = torch.where(offsets[None, :] < lengths[:, None], taken, torch.zeros_like(taken))
    return {
        "items": items,
        "lengths": lengths,
        "last": inputs[rows, columns],
        "target": targets[rows, columns],
        "rows": rows,
    }


@register
class DCRec(RecommenderModel):
    name = "dcrec"
    choices: ClassVar[dict] = {"similarity_rows": SIMILARITY_ROWS}
    defaults: ClassVar[dict] = {
        # official Beauty settings, run_DCRec.py:250-264 (RecBole's Transformer: 2 layers, 2 heads, 64 dims)
        "layers": 2,
        "heads": 2,
        "dropout": 0.5,  # hidden_dropout_prob, run_DCRec.py:253
        "attention_dropout": 0.1,  # attn_dropout_prob, Beauty's own, run_DCRec.py:260
        "graph_dropout": 0.5,  # graph_dropout_prob (edge dropout), run_DCRec.py:252
        "graphcl_coefficient": 0.1,  # run_DCRec.py:251
        "kl_weight": 0.01,  # run_DCRec.py:255
        "weight_mean": 0.5,  # run_DCRec.py:263
        "sim_group": 4,  # run_DCRec.py:262: 4 neighbours + the item itself per similarity row
        "cl_temp": 1.0,  # run_DCRec.py:264
        "neighbour_sample": 10,  # hard-coded in dcrec.py:43-51
        "eval_edge_dropout": True,  # the official GCN drops edges in eval too (dcrec.py:117-119)
        "similarity_rows": "official",  # "aligned": each item its own top-k list (fixes run_DCRec.py:121-140)
        # the self-loops dgl.add_self_loop adds (dcrec.py:118) weigh 1 from DGL 0.9.1 on (fill_data), 0 before;
        # no DGL is pinned: the line came in May 2023 (DGL 1.x) and SSLRec's identical GCN names dgl==1.1.1
        "self_loop_weight": 1.0,
        # official: 2048 shuffled prefix examples a step (run_DCRec.py:261; RecBole's shuffled loader)
        "batch_unit": "prefixes",
        "batch_size": 2048,
        # Beauty's schedule_step 30 (run_DCRec.py:259): StepLR(30, gamma 0.2) per epoch (trainer.py:114-115, 391)
        "lr_decay_every": 30,
        "lr_decay": 0.2,
        # official 300 epochs, stopping_step 20 (run_DCRec.py:226) on TEST Recall@1 over 100 sampled negatives
        # (the test loader is its valid_data, run_DCRec.py:337); ours: on validation NDCG@20, full ranking (protocol)
        "patience": 20,
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        if settings["similarity_rows"] not in SIMILARITY_ROWS:
            raise ValueError(f"similarity_rows must be one of {SIMILARITY_ROWS}, got {settings['similarity_rows']!r}")
        self.vocab_size = vocab_size
        self.backbone = backbone_from(vocab_size, settings, causal=False)
        size, std = settings["hidden_size"], settings["init_std"]
        self.graph_input_dropout = Dropout(settings["dropout"])  # dcrec.py:173, 263: the GCN input's dropout
        self.graph_norm = nn.LayerNorm(size, eps=LAYER_NORM_EPS)  # dcrec.py:196
        self.fusion_weights = nn.Parameter(torch.empty(size, size).normal_(0, std))  # attn_weights, dcrec.py:183
        self.fusion_query = nn.Parameter(torch.empty(1, size).normal_(0, std))  # attn, dcrec.py:182
        self.graph_dropout = settings["graph_dropout"]
        self.graphcl_coefficient = settings["graphcl_coefficient"]
        self.kl_weight = settings["kl_weight"]
        self.weight_mean = settings["weight_mean"]
        self.every_prefix = settings["batch_unit"] == "users"  # else each row is one prefix example
        self.self_loop_weight = settings["self_loop_weight"]
        self.sim_group = settings["sim_group"]
        self.cl_temp = settings["cl_temp"]
        self.neighbour_sample = settings["neighbour_sample"]
        self.eval_edge_dropout = settings["eval_edge_dropout"]
        self.similarity_rows = settings["similarity_rows"]
        self.prepared = False

    # ----- the graphs, built once -----
    def prepare(self, train_sequences: SequenceData) -> None:
        vocab = self.vocab_size
        inputs = without_last_items(train_sequences)  # s_1..s_{n-3}: the official training lines' histories
        self.train_adjacency = EdgeList(adjacency_graph(inputs, vocab))
        self.train_similarity = EdgeList(*similarity_graph(inputs, vocab, self.sim_group, self.similarity_rows))
        self.eval_adjacency = EdgeList(adjacency_graph(train_sequences, vocab))
        self.eval_similarity = EdgeList(*similarity_graph(train_sequences, vocab, self.sim_group, self.similarity_rows))
        # the training graph's rows (coalesced: sorted by source) for the neighbour read-outs
        row_starts = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(self.train_adjacency.out_degree, 0)])
        self.register_buffer("row_starts", row_starts, persistent=False)
        # each user's transitions (the official user_edges, run_DCRec.py:47-59), for the augmented graph
        first, second = consecutive_pairs(inputs)
        pair_offsets = np.concatenate([[0], np.cumsum(np.maximum(inputs.lengths - 1, 0))])
        self.register_buffer("pair_first", torch.from_numpy(first.astype(np.int64)), persistent=False)
        self.register_buffer("pair_second", torch.from_numpy(second.astype(np.int64)), persistent=False)
        self.register_buffer("pair_offsets", torch.from_numpy(pair_offsets.astype(np.int64)), persistent=False)
        self.prepared = True

    def _check_prepared(self) -> None:
        if not self.prepared:
            raise RuntimeError("dcrec: call prepare(train_sequences) first: its item graphs come from the data")

    def removed_transitions(self, users: torch.Tensor) -> torch.Tensor:
        """Sorted keys a * vocab + b of both directions of every transition of these users' training
        inputs: the edges the augmented graph loses (dcrec.py:73-92)."""
        starts = self.pair_offsets[users]
        _, flat = gather_ranges(starts, self.pair_offsets[users + 1] - starts)
        first, second = self.pair_first[flat], self.pair_second[flat]
        return torch.cat([first * self.vocab_size + second, second * self.vocab_size + first]).unique()

    def graph_view(
        self,
        graph: EdgeList,
        keep: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        dropped: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[vocab, d]: LayerNorm(GCN(dropout(E)) + dropout(E)) (dcrec.py:261-265), in float32.

        The official GCN drops edges in eval mode too; with `eval_edge_dropout` that happens here
        from `generator` (seeded per evaluation batch), so a model always scores the same.
        `dropped`: the dropped edges to replay instead of a draw (`EdgeList.propagation`).
        """
        drop = self.graph_dropout if (self.training or self.eval_edge_dropout) else 0.0
        with torch.autocast(self.backbone.item_embedding.weight.device.type, enabled=False):
            table = self.graph_input_dropout(self.backbone.item_embedding.weight.float())
            matrix = graph.propagation(keep, drop, generator, self.self_loop_weight, dropped)
            return self.graph_norm(light_propagation(table, matrix) + table)

    def encode(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Rows with their items first -> the output at each row's last item.

        With the items first, cutting trailing padding changes no output (padding keys are masked,
        positions count from the first item), so rows are encoded in groups of similar length,
        each cut to a power of two: most prefixes are short, and a 50-wide batch costs several
        times the encoder work.
        """
        widths = torch.clamp(lengths, min=1)
        widths = (2 ** torch.ceil(torch.log2(widths.double()))).long().clamp(max=items.shape[1])
        states = None
        for width in torch.unique(widths).tolist():
            rows = (widths == width).nonzero(as_tuple=True)[0]
            outputs = self.backbone(items[rows, :width])
            picked = outputs[torch.arange(len(rows), device=items.device), (lengths[rows] - 1).clamp(min=0)]
            if states is None:
                states = outputs.new_empty((len(items), outputs.shape[-1]))
            states = states.index_copy(0, rows, picked)
        return states

    def fuse(self, sequence: torch.Tensor, transition: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        return attention_fusion(torch.stack([sequence, transition, similarity]), self.fusion_weights, self.fusion_query)

    # ----- training -----
    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        self._check_prepared()
        examples = prefix_examples(batch["input"], batch["target"], self.every_prefix)
        count = len(examples["target"])
        if count == 0:  # every user of the batch has an empty training input
            zero = sum(parameter.sum() for parameter in self.parameters()) * 0.0
            return {"next_item": zero, "graph_cl": zero, "kl": zero, "total": zero}
        last, lengths = examples["last"], examples["lengths"]
        # two passes with their own dropout (dcrec.py:359-361), as one batch
        states = self.encode(torch.cat([examples["items"]] * 2), torch.cat([lengths] * 2))
        sequence, sequence_again = states[:count], states[count:]
        transition_all = self.graph_view(self.train_adjacency, dropped=batch.get(DROPPED["adjacency"]))
        similarity_all = self.graph_view(self.train_similarity, dropped=batch.get(DROPPED["similarity"]))
        removed = self.removed_transitions(batch["users"])
        keep = ~torch.isin(self.train_adjacency.keys(), removed)
        augmented = self.graph_view(self.train_adjacency, keep=keep, dropped=batch.get(DROPPED["augmented"]))[last]
        transition, similarity = transition_all[last], similarity_all[last]
        civil, foreign = neighbour_readouts(
            last,
            self.row_starts,
            self.train_adjacency.destination,
            removed,
            self.vocab_size,
            transition_all,
            self.neighbour_sample,
        )
        weights = conformity_weights(transition, augmented, civil, foreign, self.weight_mean)
        weights = torch.where(lengths == 1, torch.full_like(weights, SHORT_PREFIX_WEIGHT), weights)
        prior = batch.get(WEIGHT_PRIOR)
        if prior is None:
            prior = torch.normal(self.weight_mean, PRIOR_STD, size=(count,), device=weights.device)
        kl = self.kl_weight * weight_prior_kl(prior, weights)
        personal = weights.max() - weights
        weighted = weights * rowwise_info_nce(sequence_again, transition, self.cl_temp)
        weighted = weighted + personal * rowwise_info_nce(transition, similarity, self.cl_temp)
        graph_cl = self.graphcl_coefficient * weighted.mean()
        fused = self.fuse(sequence, transition, similarity)
        next_item = functional.cross_entropy(self.backbone.item_scores(fused), examples["target"])
        return {"next_item": next_item, "graph_cl": graph_cl, "kl": kl, "total": next_item + graph_cl + kl}

    # ----- scoring -----
    def represent(self, batch: Batch) -> torch.Tensor:
        """[b, d]: the fused view of each history, on the evaluation graphs (dcrec.py:428-450)."""
        self._check_prepared()
        inputs = batch["input"]
        items, lengths = items_first(inputs)
        generator = None
        if not self.training:
            first_user = int(batch["users"][0]) if "users" in batch and len(batch["users"]) else 0
            generator = torch.Generator().manual_seed(EVAL_SEED + first_user)
        last = inputs[:, -1]
        replay = {graph: batch.get(DROPPED[graph]) for graph in ("adjacency", "similarity")}
        transition = self.graph_view(self.eval_adjacency, generator=generator, dropped=replay["adjacency"])[last]
        similarity = self.graph_view(self.eval_similarity, generator=generator, dropped=replay["similarity"])[last]
        return self.fuse(self.encode(items, lengths), transition, similarity)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.represent(batch))

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.represent(batch), None

"""MAERec (Ye et al., SIGIR 2023): a graph masked autoencoder over an item graph, trained beside
a Transformer recommender whose item embeddings are that graph's GCN output, as the official
code runs it (HKUDS/MAERec; model.py, main.py and params.py read at commit bd92f2c7, handler.py,
utils.py and construct.py at 1463177c; line numbers below refer to those versions).

The item graph (built once, in `prepare`, from the training interactions only): items linked when
they occur at most 3 positions apart in one user's sequence (README.md `construct_graphs`,
construct.py:13-18), binarised, self-loops added, then D^-1/2 (A + I) D^-1/2 (handler.py:28,
38-48). Its nodes are the official table's rows, the padding 0 and the items (sp.eye(args.item),
handler.py:46, args.item = items + 1); our mask id, the last row, which that table lacks, is no
node: it has no edge (not even a loop), no seed score and is never masked.

Every `mask_steps` training steps (main.py:117-119) the masker picks new paths to hide:
1. seed scores (LocalGraph, model.py:247-268): over the all-ones A + I, a neighbourhood embedding
   is grown for `mask_depth` steps, dropping edges with keep probability path_prob^(k+1) each
   step; its cosine with the item's own (ego) embedding plus Gumbel noise scores every item, and
   the top `mask_candidates` items are the seeds. The scores keep their gradient: they are the
   masker's learnable part (it has no parameters of its own; the ego embeddings are shared).
2. path masking (RandomMaskSubgraphs, model.py:283-317): every remaining edge touching a seed is
   masked, for `mask_depth` rounds; a fraction path_prob^(k+1) of the nodes reached becomes the
   next round's seeds. The encoder sees the graph without the masked edges, re-normalised
   (no self-loops re-added). The official code forms the reached nodes as `nxtRows + nxtCols`
   (model.py:308): on tensors that is the element-wise SUM of each masked edge's two ids, not
   the edge's endpoints, so rounds 2 and 3 start from arbitrary ids (some beyond the vocabulary,
   which match nothing). `next_seeds: sum` (default) does what the code does; `endpoints` uses
   the masked edges' endpoints, the transition paths the paper describes.

Every step (main.py:124-143):
- item table T = E + A'E + A'^2 E (2 GCN layers, no weights: model.py:28-32, 106-107) over the
  masked graph A'; the recommender encodes the input with T and is trained with the BCE next-item
  loss (utils.py:52-63, the same loss as SASRec's). Its negatives (`next_item_negatives: official`)
  are drawn every epoch, one per position, uniform over 1..items-1 (`randint(1, item_size - 1)` with
  item_size = items + 1: the largest item id is never drawn) and redrawn while in the user's
  training sequence s_1..s_{n-2} (handler.py:12-16, 83-90); `protocol` keeps the batch's (every id
  up to the mask id, redrawn while anywhere in the user's whole sequence);
- reconstruction (Decoder, model.py:81-93): up to `reconstruction_edges` masked edges (main.py:81),
  each with 20 negatives that keep its first item and 20 that keep its second (main.py:83-101),
  scored by an MLP over the products E_i[u] * E_j[v] of the GCN layers i, j < gcn_layers
  (the last layer is not used), s = exp(sigmoid(MLP)); loss = -sum_edges s+ / (s+ + sum s- + 1e-8);
- L2: reg * the squared norm of every parameter (utils.py:6-10, main.py:133);
- at a masking step, the masker loss -mean(seed scores) * reward (main.py:138-143), the reward 1
  if the last step's decrease of the BCE loss beats the mean decrease since the previous masking,
  else eps (utils.py:22-30). The reward for the last 10 steps thus multiplies the new seeds' scores.
  An item with no edge but its loop (the padding row, items seen only in validation or test) has a
  neighbourhood of exactly 0, so F.normalize's eps sends ~1e10 gradients into its row through A E
  and through -E (model.py:249, 261-262), which cancel. The official code's float32 sum adds that
  row's other gradients between the two and loses them (the row's gradient is 0 at a masking step,
  depending on the edge draws); ours adds them after, which gives the exact gradient
  (docs/OFFICIAL.md "MAERec": the check compares those rows with the official gradient of the other terms).

Scoring (main.py:182-187): the item table over the FULL graph (A + I, no mask), the recommender's
last output, dot products with every row of the table. The official scores 1 target + 99 sampled
negatives; ours rank the whole vocabulary (the shared protocol).

The recommender (model.py:109-236) is a SASRec-style Transformer that differs from the shared
backbone in ways that matter, so it is built here from the backbone's attention block: (1) its
feed-forward block has NO residual connection (LayerNorm(Dropout(W2 GELU(W1 x))), model.py:227-233);
(2) its output is the SUM of the embedding layer's and every block's outputs (model.py:144-147),
not the last block's; (3) item embeddings come from the GCN, not a lookup table of its own;
(4) Xavier-uniform initialisation (model.py:10) and LayerNorm eps 1e-5 (torch's default) instead
of N(0, 0.02) and 1e-12; (4) is small, (1)-(3) change the model.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from elcrec.data.batches import ItemSets, sample_negatives
from elcrec.data.graphs import normalised, sparse, within_distance
from elcrec.data.sequences import SequenceData
from elcrec.models.backbone import Backbone, BackboneSettings, Dropout, FeedForward, SelfAttention
from elcrec.models.base import Batch, EpochContext, RecommenderModel
from elcrec.models.losses import next_item_bce
from elcrec.models.registry import register

NEXT_SEEDS = ("sum", "endpoints")
NEGATIVE_SOURCES = ("official", "protocol")
NORM_EPS = 1e-5  # torch's LayerNorm default, which the official recommender keeps (model.py:114, 182, 232)
EPSILON = 1e-8  # the official guards of the seed score and reconstruction divisions (model.py:93, 261)
MAX_REDRAWS = 100  # with `negative_rejection`: an item linked to every item has no valid negative


def gumbel_noise(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """-log(-log U) (model.py:242-245). U is kept above 0: there the official draw gives -inf and a
    non-finite loss (P = 2^-24 per draw: about once in 1,400 maskings of Beauty's 12k items)."""
    uniform = torch.rand(shape, device=device).clamp_min(torch.finfo(torch.float32).tiny)
    return -torch.log(-torch.log(uniform))


def graph_mm(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """(sparse [n, n] from the coalesced edge list) @ dense [n, d]."""
    size = dense.shape[0]
    graph = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), values, (size, size), is_coalesced=True, check_invariants=False
    )
    return torch.sparse.mm(graph, dense)


def out_degree(rows: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """[size, 1] edge counts per row (the row sums of an all-ones graph)."""
    return torch.zeros(size, 1, dtype=dtype, device=rows.device).index_add_(
        0, rows, torch.ones(len(rows), 1, dtype=dtype, device=rows.device)
    )


def seed_scores(
    rows: torch.Tensor, cols: torch.Tensor, embeddings: torch.Tensor, depth: int, path_prob: float
) -> torch.Tensor:
    """LocalGraph.forward before its noise (model.py:247-265), on the all-ones graph `rows, cols`.

    The neighbourhood sums grow for `depth` steps over a graph thinned each step (edges kept with
    probability path_prob^(k+1), cumulatively: model.py:13-17, 256); `order` lags one step behind
    the thinned graph, as in the code. Returns [n] cosines of that neighbourhood mean and the
    item's own embedding.
    """
    size, dtype = embeddings.shape[0], embeddings.dtype

    def ones(index: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(index), dtype=dtype, device=index.device)

    order = out_degree(rows, size, dtype)
    grown = [graph_mm(rows, cols, ones(rows), embeddings) - embeddings]
    counts = [order]
    for step in range(depth):
        keep = torch.rand(len(rows), device=rows.device) < path_prob ** (step + 1)
        rows, cols = rows[keep], cols[keep]
        grown.append(graph_mm(rows, cols, ones(rows), grown[-1]) - grown[-1] - order * grown[-1])
        counts.append(graph_mm(rows, cols, ones(rows), counts[-1]) - counts[-1] - order)
        order = out_degree(rows, size, dtype)
    neighbourhood = functional.normalize(torch.stack(grown).sum(0) / (torch.stack(counts).sum(0) + EPSILON))
    return (neighbourhood * functional.normalize(embeddings)).sum(-1)


def mask_paths(
    rows: torch.Tensor, cols: torch.Tensor, seeds: torch.Tensor, depth: int, path_prob: float, next_seeds: str = "sum"
) -> tuple[torch.Tensor, torch.Tensor]:
    """RandomMaskSubgraphs.forward (model.py:283-312): (bool [edges], True where the edge stays;
    the masked edges [m, 2] as (row, col), round by round in edge order)."""
    if next_seeds not in NEXT_SEEDS:
        raise ValueError(f"next_seeds must be one of {NEXT_SEEDS}, got {next_seeds!r}")
    remaining = torch.ones(len(rows), dtype=torch.bool, device=rows.device)
    masked = []
    for step in range(depth):
        hit = remaining & (torch.isin(rows, seeds) | torch.isin(cols, seeds))
        masked.append(hit.nonzero()[:, 0])
        remaining &= ~hit
        if step == depth - 1:
            break
        reached = rows[hit] + cols[hit] if next_seeds == "sum" else torch.cat([rows[hit], cols[hit]])
        reached = torch.unique(reached)
        count = int(len(reached) * path_prob ** (step + 1))
        seeds = reached[torch.randperm(len(reached), device=reached.device)[:count]]
    order = torch.cat(masked)
    return remaining, torch.stack([rows[order], cols[order]], dim=1)


def inverse_root_degree(rows: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """[size] (d + 1e-12)^-1/2, d the row sums of the binary graph the masking left: an edge (r, c)
    of the encoder's graph weighs factor[r] * factor[c] (RandomMaskSubgraphs.normalize, model.py:276-281)."""
    return (out_degree(rows, size, dtype)[:, 0] + 1e-12).pow(-0.5)


def reconstruction_negatives(
    positive: torch.Tensor, count: int, high: int, edge_keys: torch.Tensor | None = None, size: int = 0
) -> torch.Tensor:
    """[n, 2] masked edges -> [n, 2 * (count // 2), 2]: count // 2 pairs (u, random) then count // 2
    pairs (random, v) per edge (u, v), random ids uniform in 1..high-1 (main.py:83-101).

    With `edge_keys` (row * size + col of every graph edge) a draw that is an edge is drawn again,
    as main.py:91, 97 intend; the official lookup never matches (its keys hold torch tensors, which
    hash by identity, so `(u, v) in dok` is always False) and its negatives are plain uniform draws.
    """
    half, edges = count // 2, len(positive)
    drawn = torch.randint(1, high, (edges, 2 * half), device=positive.device)
    first = torch.cat([positive[:, :1].expand(edges, half), drawn[:, half:]], dim=1)
    second = torch.cat([drawn[:, :half], positive[:, 1:].expand(edges, half)], dim=1)
    if edge_keys is not None:
        keeps_first = torch.arange(2 * half, device=positive.device) < half  # (u, random): redraw the second id
        for _ in range(MAX_REDRAWS):
            bad = torch.isin(first * size + second, edge_keys)
            if not bool(bad.any()):
                break
            fresh = torch.randint(1, high, bad.shape, device=positive.device)
            second = torch.where(bad & keeps_first, fresh, second)
            first = torch.where(bad & ~keeps_first, fresh, first)
    return torch.stack([first, second], dim=-1)


def masker_reward(main_losses: list[torch.Tensor], eps: float) -> torch.Tensor | float:
    """calc_reward (utils.py:22-30): 1 if the last decrease of the recommender's loss beats the mean
    of the earlier decreases in the window (the losses since the last masking, that one included),
    else eps; 1 while the window holds fewer than three losses."""
    if len(main_losses) < 3:
        return 1.0
    decreases = torch.stack(main_losses[:-1]) - torch.stack(main_losses[1:])
    return torch.where(decreases[-1] > decreases[:-1].mean(), 1.0, eps)


def reconstruction_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Decoder.forward's loss (model.py:92-93): positive [n], negative [n, k] scores (already exp'd);
    -sum over edges of (s+ / (s+ + sum s- + 1e-8) + 1e-8): a sum, not a mean, and no logarithm."""
    return -(positive / (negative.sum(-1) + positive + EPSILON) + EPSILON).sum()


def _xavier(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            module.bias.data.zero_()


class EdgeDecoder(nn.Module):
    """Decoder (model.py:68-79): [*, 2] item pairs -> [*] scores exp(sigmoid(MLP(products)))."""

    def __init__(self, size: int, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.mlp = nn.Sequential(
            nn.Linear(size * layers**2, size * layers),
            nn.ReLU(),
            nn.Linear(size * layers, size),
            nn.ReLU(),
            nn.Linear(size, 1),
            nn.Sigmoid(),
        )
        self.apply(_xavier)

    def forward(self, embeddings: list[torch.Tensor], pairs: torch.Tensor) -> torch.Tensor:
        # each layer gathered once per side (an embedding lookup: on the CPU its backward is
        # several times faster than that of advanced indexing), then the L^2 products, i-major
        heads = [functional.embedding(pairs[..., 0], layer) for layer in embeddings[: self.layers]]
        tails = [functional.embedding(pairs[..., 1], layer) for layer in embeddings[: self.layers]]
        features = [head * tail for head in heads for tail in tails]
        return torch.exp(self.mlp(torch.cat(features, dim=-1))[..., 0])


class LayerSumTransformer(nn.Module):
    """The official SASRec (model.py:109-149): input ids and an item table -> the sum of the
    embedding layer's and every block's outputs [b, L, d] (or [b, d] at the last position)."""

    def __init__(self, settings: BackboneSettings) -> None:
        super().__init__()
        self.position_embedding = nn.Parameter(
            nn.init.xavier_uniform_(torch.empty(settings.max_len, settings.hidden_size))
        )
        self.embedding_norm = nn.LayerNorm(settings.hidden_size, eps=NORM_EPS)
        self.embedding_dropout = Dropout(settings.dropout)
        self.attention = nn.ModuleList(SelfAttention(settings) for _ in range(settings.layers))
        for block in self.attention:
            block.norm.eps = NORM_EPS
        # IntermediateLayer (model.py:224-236): LayerNorm(Dropout(W2 GELU(W1 x))), no residual
        self.feed_forward = nn.ModuleList(
            FeedForward(settings, residual=False, eps=NORM_EPS) for _ in range(settings.layers)
        )
        self.apply(_xavier)

    def forward(self, input_ids: torch.Tensor, items: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """`last_only`: the sum at the last position alone; the last block then computes only its
        last query (every layer is position-wise after attention, so this equals forward()[:, -1])."""
        positions = self.position_embedding[: input_ids.shape[1]]
        states = self.embedding_dropout(self.embedding_norm(items[input_ids] + positions[None]))
        mask = Backbone.additive_mask(input_ids).to(states.dtype)
        total = states[:, -1:] if last_only else states
        for index, (attention, feed_forward) in enumerate(zip(self.attention, self.feed_forward, strict=True)):
            states = feed_forward(attention(states, mask, last_only and index == len(self.attention) - 1))
            total = total + (states[:, -1:] if last_only else states)
        return total[:, -1] if last_only else total


@register
class MAERec(RecommenderModel):
    name = "maerec"
    choices: ClassVar[dict] = {"next_seeds": NEXT_SEEDS, "next_item_negatives": NEGATIVE_SOURCES}
    defaults: ClassVar[dict] = {
        "hidden_size": 64,  # the shared protocol's 64 dimensions (official latdim 32, params.py:17)
        "layers": 2,  # Transformer blocks (params.py:22)
        "heads": 4,  # params.py:20
        "inner_size": 256,  # 4 * hidden_size (model.py:228)
        "dropout": 0.3,  # hidden_dropout_prob (params.py:28)
        "attention_dropout": 0.3,  # attention_probs_dropout_prob (params.py:27)
        "gcn_layers": 2,  # params.py:21
        "graph_distance": 3,  # README.md construct_graphs(distance=3) (construct.py:32 reads an undefined args.ii_dis)
        "mask_depth": 3,  # params.py:18
        "path_prob": 0.5,  # params.py:19
        "mask_candidates": 50,  # num_mask_cand (params.py:24)
        "mask_steps": 10,  # params.py:25
        "reconstruction_edges": 2048,  # con_batch (params.py:11)
        "reconstruction_negatives": 40,  # num_reco_neg (params.py:14)
        "reward_eps": 0.2,  # eps (params.py:26)
        "reg": 1e-6,  # params.py:15
        "next_seeds": "sum",  # as model.py:308 runs; "endpoints": the paper's transition paths
        "negative_rejection": False,  # as main.py:91, 97 run (never rejects); True: reject graph edges
        "next_item_negatives": "official",  # handler.py:12-16: 1..items-1, not in the training sequence
        "lr": 1e-3,  # params.py:5
        "batch_size": 256,  # trn_batch (params.py:9)
        # official 20 epochs (params.py:8); its best epoch is picked on the test set's sampled HR@10
        # (main.py:58), ours on validation NDCG@20 (protocol). Variant `e300`: the protocol's 300 / 40
        "epochs": 20,
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        if settings["next_seeds"] not in NEXT_SEEDS:
            raise ValueError(f"next_seeds must be one of {NEXT_SEEDS}, got {settings['next_seeds']!r}")
        self.vocab_size = vocab_size
        self.gcn_layers, self.graph_distance = settings["gcn_layers"], settings["graph_distance"]
        self.mask_depth, self.path_prob = settings["mask_depth"], settings["path_prob"]
        self.mask_candidates, self.mask_steps = settings["mask_candidates"], settings["mask_steps"]
        self.reconstruction_edges = settings["reconstruction_edges"]
        self.reconstruction_negatives = settings["reconstruction_negatives"]
        self.reward_eps, self.reg = settings["reward_eps"], settings["reg"]
        self.next_seeds, self.negative_rejection = settings["next_seeds"], settings["negative_rejection"]
        self.official_negatives = settings["next_item_negatives"] == "official"
        fields = BackboneSettings.__dataclass_fields__
        backbone = BackboneSettings(**{key: value for key, value in settings.items() if key in fields})
        # the ego item embeddings (Encoder.item_emb, model.py:22): shared by GCN, recommender and masker
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(vocab_size, backbone.hidden_size)))
        self.transformer = LayerSumTransformer(backbone)
        self.decoder = EdgeDecoder(backbone.hidden_size, self.gcn_layers)
        self._reset_masking()

    # ----- the item graph -----
    def prepare(self, train_sequences: SequenceData) -> None:
        """Builds the graph once per run from s_1..s_{n-2} of every user (handler.py:61-69)."""
        size = self.vocab_size
        linked = within_distance(train_sequences, size, self.graph_distance).indices()  # A, binary
        # I over the official rows 0..items (handler.py:46): the mask id (size - 1) gets no loop
        loops = torch.arange(size - 1).repeat(2, 1)
        both = sparse(torch.cat([linked, loops], dim=1), torch.ones(linked.shape[1] + size - 1), (size, size))
        graph = normalised(sparse(both.indices(), torch.ones(both.indices().shape[1]), (size, size)), "sym")
        self.register_buffer("graph_rows", graph.indices()[0].clone(), persistent=False)
        self.register_buffer("graph_cols", graph.indices()[1].clone(), persistent=False)
        self.register_buffer("graph_values", graph.values().clone(), persistent=False)  # D^-1/2 (A + I) D^-1/2
        # the official `ii_dok` (A without the added loops), the edges `negative_rejection` avoids
        self.register_buffer("edge_keys", linked[0] * size + linked[1], persistent=False)
        # each user's training sequence, which the official next-item negatives avoid (handler.py:83)
        self.register_buffer("training_keys", ItemSets(train_sequences.history(), size).keys, persistent=False)
        self._reset_masking()

    def _require_graph(self) -> None:
        if not hasattr(self, "graph_rows"):
            raise RuntimeError("MAERec needs its item graph: call prepare(train_sequences) first")

    def propagate(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor) -> list[torch.Tensor]:
        """Encoder.forward (model.py:28-32): [E, A E, A^2 E, ...], gcn_layers + 1 tensors."""
        layers = [self.item_embedding]
        for _ in range(self.gcn_layers):
            layers.append(graph_mm(rows, cols, values, layers[-1]))
        return layers

    def full_table(self) -> torch.Tensor:
        """The item table over the unmasked graph, as the official test_epoch uses (main.py:182)."""
        self._require_graph()
        return torch.stack(self.propagate(self.graph_rows, self.graph_cols, self.graph_values)).sum(0)

    # ----- masking -----
    def _reset_masking(self) -> None:
        self.step = 0
        self.main_losses: list[torch.Tensor] = []
        self.encoder_graph: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.masked_edges: torch.Tensor | None = None

    def remask(self) -> torch.Tensor:
        """New seeds and masked paths (main.py:118-119); returns the noisy seed scores [vocab - 1] of
        the official rows 0..items (LocalGraph scores the official table, which has no mask id)."""
        rows, cols = self.graph_rows, self.graph_cols
        scores = seed_scores(rows, cols, self.item_embedding[:-1], self.mask_depth, self.path_prob)
        scores = scores + gumbel_noise(scores.shape, scores.device)
        seeds = torch.topk(scores, min(self.mask_candidates, len(scores))).indices
        remaining, self.masked_edges = mask_paths(rows, cols, seeds, self.mask_depth, self.path_prob, self.next_seeds)
        rows, cols = rows[remaining], cols[remaining]
        factor = inverse_root_degree(rows, self.vocab_size, self.item_embedding.dtype)
        self.encoder_graph = (rows, cols, factor[rows] * factor[cols])
        return scores

    def on_epoch_start(self, context: EpochContext) -> None:
        """The official loop restarts its step count, and so the masking, every epoch (main.py:110-117)."""
        self._reset_masking()

    # ----- training and scoring -----
    def reconstruction_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to `reconstruction_edges` masked edges [n, 2] (main.py:80-81) and their negatives
        [n, reconstruction_negatives, 2] among the real items 1..vocab-2 (the official
        randint(1, args.item): never the padding or the mask id)."""
        masked = self.masked_edges
        positive = masked[torch.randperm(len(masked), device=masked.device)[: self.reconstruction_edges]]
        negative = reconstruction_negatives(
            positive,
            self.reconstruction_negatives,
            self.vocab_size - 1,
            self.edge_keys if self.negative_rejection else None,
            self.vocab_size,
        )
        return positive, negative

    def next_item_negatives(self, batch: Batch) -> torch.Tensor:
        """The official negatives of the batch's target positions (handler.py:12-16, 83-90): ids
        1..items-1 (vocab_size - 2 = items), redrawn while in the user's training sequence."""
        item_sets = ItemSets.of_keys(self.training_keys, self.vocab_size)
        return sample_negatives(batch["target"], batch["users"], item_sets, None, high=self.vocab_size - 2)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        self._require_graph()
        masking_step = self.step % self.mask_steps == 0 or self.encoder_graph is None
        if masking_step:
            scores = self.remask()
        layers = self.propagate(*self.encoder_graph)
        table = torch.stack(layers).sum(0)
        if self.official_negatives:
            batch = batch | {"negative": self.next_item_negatives(batch)}
        next_item = next_item_bce(
            self.transformer(batch["input"], table), partial(functional.embedding, weight=table), batch
        )
        positive, negative = self.reconstruction_pairs()
        decoded = layers[: self.gcn_layers]  # the official decoder never reads the last GCN layer
        reconstruction = reconstruction_loss(self.decoder(decoded, positive), self.decoder(decoded, negative))
        regularisation = self.reg * sum(parameter.square().sum() for parameter in self.parameters())
        total = next_item + reconstruction + regularisation
        self.main_losses.append(next_item.detach())
        mask = torch.zeros((), device=table.device)
        if masking_step:
            mask = -scores.mean() * masker_reward(self.main_losses, self.reward_eps)
            self.main_losses = self.main_losses[-1:]
            total = total + mask
        self.step += 1
        return {
            "next_item": next_item,
            "reconstruction": reconstruction,
            "mask": mask,
            "regularisation": regularisation,
            "total": total,
        }

    def score(self, batch: Batch) -> torch.Tensor:
        table = self.full_table()
        return self.transformer(batch["input"], table, last_only=True) @ table.T

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.transformer(batch["input"], self.full_table()).mean(dim=1), None

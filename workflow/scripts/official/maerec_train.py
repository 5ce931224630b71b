#!/usr/bin/env python
"""Numeric fixture of the OFFICIAL MAERec training step (HKUDS/MAERec) on a tiny item graph: one
batch of 8 users, every random draw of that step recorded, the loss terms, every gradient, and the
evaluation scores of 8 users over every item.

Maintainer command (docs/OFFICIAL.md); it writes tests/data/official/maerec_train.{npz,json}, which
tests/test_official_maerec.py and elcrec.official.maerec compare ours against:

    git clone https://github.com/HKUDS/MAERec
    git -C MAERec checkout bd92f2c7776d52a83361ef5c4ca5dc6635ccec00
    python workflow/scripts/official/maerec_train.py MAERec

(Only the Python files of the checkout are read; its datasets/*.zip are not needed.)

The data: 8 synthetic users over 40 items (a seeded random walk, below), full sequences s_1..s_n
of 4 to 25 items. As the official data are laid out (handler.py:20-24, 60-73): `seq` holds each
user's training part s_1..s_{n-2}, `tst` s_1..s_n (the test input s_1..s_{n-1}, the answer s_n),
`neg` each user's sampled test items, here every item 1..40, so that the official test scores
cover every item; `trn`, the item graph, is written by the official `construct_graphs`
(construct.py:8-23, distance 3 as README.md says) from `seq`, with num_items = items + 1. The test
lengths put users in each of the official test loop's four length groups (main.py:215-217 divides
by each group's count).

Nothing of the official code is copied here. The official modules are imported from the checkout
(sys.path) with sys.argv set to the official flags (params.py parses them on import: its defaults,
made tiny: --latdim 32 --max_seq_len 20 --trn_batch 8 --tst_batch 8 --num_mask_cand 5, and
--data tiny), in a temporary folder holding datasets/tiny/. `import main` seeds torch and numpy
with the official seed (main.py:13-14); then, as Coach.run does (main.py:38-51): the official
DataHandler.load_data, Coach(handler), coach.prepare_model() (the seeded initialisation),
coach.test_epoch() (its score matrix, captured from calc_res's arguments), and coach.train_epoch()
for its first step (main.py:115-153) with the modules kept in eval mode (their `train` made a no-op:
dropout off) and opt.step replaced by a stop: the step runs to its loss.backward(), and the weights
are never updated. The official code calls .cuda() throughout; here Tensor.cuda and Module.cuda
return their argument (CPU).

Recorded, while the official code draws them (torch.rand/torch.randperm wrapped to record, not to
change, the draws; the official functions wrapped to record their inputs and outputs): the batch
(the DataLoader's shuffled users and their neg_sample negatives), LocalGraph's three edge-dropout
uniforms with the edges each drops from (model.py:13-17, 255-259) and its Gumbel uniforms
(model.py:242-245), the seeds, RandomMaskSubgraphs' two permutations of the reached ids
(model.py:311), the masked edges, sample_pos_edges' permutation and its positives (main.py:80-81),
sample_neg_edges' negatives (main.py:83-101, numpy). The loss terms are those the official step
computes: cross_entropy's return (loss_main), the Decoder's return (loss_reco), calc_reg_loss's
three returns (loss_regu = their sum * args.reg, main.py:133, re-summed here in float32 in the
official order), calc_reward's return (loss_mask = -sample_scr.mean() * reward, main.py:140,
likewise), and the tensor loss.backward() is called on (the total); the re-summed total is checked
to equal it bit for bit. One diagnostic beside them: the item table's gradient by loss_main +
loss_reco + loss_regu alone (torch.autograd.grad on the official step's graph just before its
backward; nothing accumulated), with which the check compares the rows whose official gradient the
float32 sum swallows (docs/OFFICIAL.md "MAERec"). The npz is written with fixed zip timestamps, so
a second run writes the same bytes.
"""

import argparse
import json
import os
import pickle
import shutil
import sys
import tempfile

import numpy as np
import torch
from fixture import save_arrays, save_record

torch.set_num_threads(1)

REPO = "HKUDS/MAERec"
COMMIT = "bd92f2c7776d52a83361ef5c4ca5dc6635ccec00"
NAME = "maerec_train"
ITEMS = 40  # real items 1..40: the official args.item = 41 (handler.py:66), ours vocab 42 (+ mask id)
LENGTHS = [4, 5, 7, 10, 12, 16, 22, 25]  # full sequences; test inputs of 3, 4, 6, 9, 11, 15, 21, 24 items
DATA_SEED = 0  # the synthetic sequences (numpy RandomState, below)
FLAGS = [
    "--data",
    "tiny",
    "--latdim",
    "32",
    "--max_seq_len",
    "20",
    "--trn_batch",
    "8",
    "--tst_batch",
    "8",
    "--num_mask_cand",
    "5",
]
DISTANCE = 3  # README.md: construct_graphs(..., distance=3)

cli = argparse.ArgumentParser()
cli.add_argument("checkout")
cli.add_argument("--out", default="tests/data/official")
opt = cli.parse_args()
CHECKOUT = os.path.abspath(opt.checkout)
OUT = os.path.abspath(opt.out)
os.makedirs(OUT, exist_ok=True)


# ----------------------------------------------------------------------------------------------
# 1. The tiny data set in the official layout.
# ----------------------------------------------------------------------------------------------
def synthetic_sequences() -> list[list[int]]:
    """Random walks on the ring 1..ITEMS (steps -3..3, an occasional jump): nearby items co-occur,
    so the item graph has neighbourhoods for the masker to grow through."""
    rng = np.random.RandomState(DATA_SEED)
    sequences = []
    for length in LENGTHS:
        item = int(rng.randint(1, ITEMS + 1))
        sequence = [item]
        while len(sequence) < length:
            step = int(rng.choice([-3, -2, -1, 1, 2, 3])) if rng.rand() < 0.85 else int(rng.randint(1, ITEMS))
            item = (item - 1 + step) % ITEMS + 1
            sequence.append(item)
        sequences.append(sequence)
    return sequences


full = synthetic_sequences()
train_seqs = [sequence[:-2] for sequence in full]  # the official `seq`: training parts s_1..s_{n-2}
test_seqs = [list(sequence) for sequence in full]  # `tst`: input s_1..s_{n-1}, answer s_n
test_negs = [list(range(1, ITEMS + 1)) for _ in full]  # `neg`: every item, so every item is scored

work = tempfile.mkdtemp(prefix="maerec-official-")
prefix = os.path.join(work, "datasets", "tiny", "")
os.makedirs(prefix)
for name, value in (("seq", train_seqs), ("tst", test_seqs), ("neg", test_negs)):
    with open(prefix + name, "wb") as handle:
        pickle.dump(value, handle)

# ----------------------------------------------------------------------------------------------
# 2. The official modules: params parses sys.argv on import; the code calls .cuda() throughout.
# ----------------------------------------------------------------------------------------------
torch.Tensor.cuda = lambda self, *args, **kwargs: self
torch.nn.Module.cuda = lambda self, *args, **kwargs: self
sys.path.insert(0, CHECKOUT)
old_cwd, old_argv = os.getcwd(), sys.argv
sys.argv = ["main.py", *FLAGS]
os.chdir(work)
import construct  # noqa: E402  (the official graph construction; its __main__ block is not run)

construct.seqs = train_seqs  # construct_graphs iterates the module's `seqs` (construct.py:11)
construct.construct_graphs(train_seqs, ITEMS + 1, DISTANCE, prefix)
print()
import main  # noqa: E402  (main.py:13-14 seed torch and numpy with args.seed)
import model as official_model  # noqa: E402

args = main.args
handler = main.DataHandler()
handler.load_data()
coach = main.Coach(handler)
coach.prepare_model()
assert args.item == ITEMS + 1 and args.user == len(full)
modules = {"encoder": coach.encoder, "decoder": coach.decoder, "recommender": coach.recommender}
weights = {
    f"{prefix_}.{name}": parameter.detach().clone()
    for prefix_, module in modules.items()
    for name, parameter in module.named_parameters()
}

# ----------------------------------------------------------------------------------------------
# 3. The official test loop (Coach.run calls it first, main.py:48): the scores of every item.
# ----------------------------------------------------------------------------------------------
captured = {}
_calc_res = coach.calc_res


def calc_res_w(scores, tst_ids, pos_ids, seq_len):
    captured["test"] = (scores.copy(), tst_ids.copy(), pos_ids.copy(), seq_len.copy())
    return _calc_res(scores, tst_ids, pos_ids, seq_len)


def keep_input(module, inputs, output):
    captured.setdefault("recommender_inputs", []).append(inputs[0].clone())


coach.calc_res = calc_res_w
hook = coach.recommender.register_forward_hook(keep_input)
test_result = coach.test_epoch()
hook.remove()
test_scores, test_ids, test_answers, test_lengths = captured["test"]
test_input = captured.pop("recommender_inputs")[0]
assert (test_ids[:, 1:] == np.arange(1, ITEMS + 1)).all()  # [answer] + every item (main.py:185)

# ----------------------------------------------------------------------------------------------
# 4. One official training step, every random draw and loss term recorded.
# ----------------------------------------------------------------------------------------------
phase = {"name": "loader"}
draws = []  # (phase, function, tensor) in call order
_rand, _randperm = torch.rand, torch.randperm


def rand_w(*args_, **kwargs):
    out = _rand(*args_, **kwargs)
    draws.append((phase["name"], "rand", out.clone()))
    return out


def randperm_w(*args_, **kwargs):
    out = _randperm(*args_, **kwargs)
    draws.append((phase["name"], "randperm", out.clone()))
    return out


dropout_edges = []  # the edges each sparse_dropout call drops from, official order
_sparse_dropout = official_model.sparse_dropout


def sparse_dropout_w(x, keep_prob):
    dropout_edges.append(x._indices().clone())
    return _sparse_dropout(x, keep_prob)


def phased(name, function):
    def wrapped(*args_, **kwargs):
        phase["name"] = name
        try:
            return function(*args_, **kwargs)
        finally:
            phase["name"] = None

    return wrapped


def recording(name, function):
    def wrapped(*args_, **kwargs):
        out = function(*args_, **kwargs)
        captured[name] = (args_, out)
        return out

    return wrapped


indices = []
_getitem = main.SeqRecTrnDataset.__getitem__


def getitem_w(self, index):
    indices.append(int(index))
    return _getitem(self, index)


reg_losses = []
_calc_reg_loss = main.calc_reg_loss


def calc_reg_loss_w(module):
    out = _calc_reg_loss(module)
    reg_losses.append(out)
    return out


totals = []
_backward = torch.Tensor.backward


def backward_w(self, *args_, **kwargs):
    """Records the total; first (a diagnostic, retain_graph, nothing accumulated) the gradient of the
    item table by loss_main + loss_reco + loss_regu alone, with which the rows the official float32
    accumulation swallows are compared (docs/OFFICIAL.md "MAERec")."""
    totals.append(self)
    regu = (reg_losses[0] + reg_losses[1] + reg_losses[2]) * args.reg
    others = captured["cross_entropy"][1] + captured["decoder"][1] + regu
    (captured["grad_without_mask"],) = torch.autograd.grad(others, coach.encoder.item_emb, retain_graph=True)
    return _backward(self, *args_, **kwargs)


class StepDone(Exception):
    """opt.step's stand-in: the step ends after loss.backward(), the weights never updated."""


def stop(*args_, **kwargs):
    raise StepDone


for module in (coach.encoder, coach.decoder, coach.recommender, coach.masker, coach.sampler):
    module.eval()
    module.train = lambda mode=True, module=module: module  # dropout stays off through main.py:104-108
for module in modules.values():
    for parameter in module.parameters():
        parameter.grad = None
coach.opt.step = stop
coach.sampler.forward = recording("sampler", phased("local_graph", coach.sampler.forward))
coach.masker.forward = recording("masker", phased("masker", coach.masker.forward))
coach.sample_pos_edges = recording("positive", phased("positive", coach.sample_pos_edges))
coach.sample_neg_edges = recording("negative", coach.sample_neg_edges)
coach.decoder.forward = recording("decoder", coach.decoder.forward)
main.cross_entropy = recording("cross_entropy", main.cross_entropy)
main.calc_reward = recording("reward", main.calc_reward)
main.calc_reg_loss = calc_reg_loss_w
main.SeqRecTrnDataset.__getitem__ = getitem_w
handler.trn_loader.collate_fn = recording("batch", handler.trn_loader.collate_fn)
official_model.sparse_dropout = sparse_dropout_w
torch.rand, torch.randperm, torch.Tensor.backward = rand_w, randperm_w, backward_w
try:
    coach.train_epoch()
    raise AssertionError("the official step did not reach opt.step")
except StepDone:
    pass
finally:
    torch.rand, torch.randperm, torch.Tensor.backward = _rand, _randperm, _backward
    os.chdir(old_cwd)
    sys.argv = old_argv


# ----------------------------------------------------------------------------------------------
# 5. What the step computed, checked against itself.
# ----------------------------------------------------------------------------------------------
seq, pos, neg = captured["batch"][1]  # the collated batch (main.py:121-122)
sample_scr, candidates = captured["sampler"][1]
encoder_adj, masked_edge = captured["masker"][1]
positives = captured["positive"][1]
negatives = captured["negative"][1]
loss_main = captured["cross_entropy"][1]
loss_reco = captured["decoder"][1]
reward = captured["reward"][1]
(total,) = totals
assert len(reg_losses) == 3 and len(indices) == len(full) == len(seq)
local = [tensor for where, kind, tensor in draws if where == "local_graph"]
assert [kind for where, kind, _ in draws if where == "local_graph"] == ["rand"] * (args.mask_depth + 1)
masker_perms = [tensor for where, kind, tensor in draws if where == "masker"]
positive_perms = [tensor for where, kind, tensor in draws if where == "positive"]
assert len(masker_perms) == args.mask_depth - 1 and len(positive_perms) == 1  # every round reached seeds
assert [edges.shape[1] for edges in dropout_edges] == [len(uniform) for uniform in local[:-1]]
assert torch.equal(positives, masked_edge[positive_perms[0][: args.con_batch]])
half = args.num_reco_neg // 2
assert torch.equal(negatives[:, :half, 0], positives[:, :1].expand(-1, half))
assert torch.equal(negatives[:, half:, 1], positives[:, 1:].expand(-1, half))
# loss_regu and loss_mask are locals of train_epoch: re-made from their captured parts in the
# official order and float32 (main.py:133, 140), and the total checked bit for bit against the
# tensor loss.backward() was called on (main.py:135, 143, 152)
loss_regu = (reg_losses[0] + reg_losses[1] + reg_losses[2]) * args.reg
loss_mask = -sample_scr.mean() * reward
again = loss_main + loss_reco + loss_regu
again += loss_mask
assert torch.equal(again, total), (again, total)
assert reward == 1.0  # the step's window holds one loss (utils.py:23-24)

# ----------------------------------------------------------------------------------------------
# 6. Save (fixed zip timestamps and order: the same bytes on every run).
# ----------------------------------------------------------------------------------------------
arrays = {
    "data/train_items": np.concatenate(train_seqs).astype(np.int64),
    "data/train_lengths": np.array([len(s) for s in train_seqs], dtype=np.int64),
    "data/full_items": np.concatenate(full).astype(np.int64),
    "data/full_lengths": np.array(LENGTHS, dtype=np.int64),
    "graph/indices": handler.ii_adj._indices().numpy().astype(np.int64),  # the official edge order
    "graph/values": handler.ii_adj._values().numpy().astype(np.float32),
    "batch/users": np.array(indices, dtype=np.int64),  # the dataset indices, in the loader's order
    "batch/seq": seq.numpy().astype(np.int64),
    "batch/pos": pos.numpy().astype(np.int64),
    "batch/neg": neg.numpy().astype(np.int64),
    "draw/gumbel_uniform": local[-1].numpy().astype(np.float32),
    "draw/positive_perm": positive_perms[0].numpy().astype(np.int64),
    "draw/reconstruction_negatives": negatives.numpy().astype(np.int64),
    "masker/sample_scr": sample_scr.detach().numpy().astype(np.float32),
    "masker/candidates": candidates.numpy().astype(np.int64),
    "masker/masked_edge": masked_edge.numpy().astype(np.int64),
    "masker/encoder_adj_indices": encoder_adj._indices().numpy().astype(np.int64),
    "masker/encoder_adj_values": encoder_adj._values().numpy().astype(np.float32),
    "masker/positives": positives.numpy().astype(np.int64),
    "scores/input": test_input.numpy().astype(np.int64),
    "scores/answer": test_answers.astype(np.int64).reshape(-1),
    "scores": test_scores[:, 1:].astype(np.float32),  # items 1..ITEMS (column 0 is the answer again)
}
for step, (edges, uniform) in enumerate(zip(dropout_edges, local[:-1], strict=True)):
    arrays[f"draw/dropout_edges/{step}"] = edges.numpy().astype(np.int64)
    arrays[f"draw/dropout_uniform/{step}"] = uniform.numpy().astype(np.float32)
for step, perm in enumerate(masker_perms):
    arrays[f"draw/masker_perm/{step}"] = perm.numpy().astype(np.int64)
losses = {
    "loss_main": loss_main.item(),
    "loss_reco": loss_reco.item(),
    "loss_regu": loss_regu.item(),
    "loss_mask": loss_mask.item(),
    "loss": total.item(),
}
arrays |= {f"loss/{name}": np.float64(value) for name, value in losses.items()}
arrays |= {f"weight/{name}": value.numpy().astype(np.float32) for name, value in weights.items()}
grad_names = []
for prefix_, module in modules.items():
    for name, parameter in module.named_parameters():
        grad = torch.zeros_like(parameter) if parameter.grad is None else parameter.grad
        grad_names.append(f"{prefix_}.{name}")
        grad = grad.detach().numpy().astype(np.float32)
        if name == "item_emb":  # the table by its nonzero rows (ours has one more: the mask id's, 0)
            rows = np.flatnonzero(np.any(grad != 0, axis=1)).astype(np.int64)
            arrays[f"grad_rows/{prefix_}.{name}"] = rows
            grad = grad[rows]
        arrays[f"grad/{prefix_}.{name}"] = grad
# the item table's gradient by the three other terms (no masker loss), every row
arrays["diagnostic/grad_without_mask/encoder.item_emb"] = captured["grad_without_mask"].numpy().astype(np.float32)
for key, value in arrays.items():
    assert np.all(np.isfinite(value)), key


npz_path, digest = save_arrays(OUT, NAME, arrays)


def line(file: str, lines: str) -> str:
    return f"{file}:{lines}"


record = {
    "repository": REPO,
    "commit": COMMIT,
    "command": "python workflow/scripts/official/maerec_train.py MAERec",
    "torch_version": torch.__version__,
    "numpy_version": np.__version__,
    "seed": args.seed,
    "official_flags": FLAGS,
    "official_args": {key: value for key, value in sorted(vars(args).items()) if not key.startswith("_")},
    "data": (
        f"{len(full)} synthetic users over items 1..{ITEMS} (numpy RandomState({DATA_SEED}) random walks on the "
        f"ring of items, steps -3..3 or a jump with probability 0.15), full lengths {LENGTHS}; `seq` = s_1..s_n-2, "
        "`tst` = s_1..s_n, `neg` = every item; `trn` by the official construct_graphs (distance 3)"
    ),
    "sampling": (
        "main.py:13-14 seed torch and numpy with args.seed (19260817) on import; prepare_model draws the "
        "initialisation; test_epoch draws nothing; the training step: the DataLoader's RandomSampler "
        "(torch), neg_sample (numpy, handler.py:12-16, 83-90) for each of the 8 users in the sampler's order, "
        "LocalGraph's 3 edge-dropout uniforms and its Gumbel uniforms (torch.rand), RandomMaskSubgraphs' "
        "2 permutations of the reached ids (torch.randperm), sample_pos_edges' permutation (torch.randperm), "
        "sample_neg_edges (numpy.random.randint). Every one is stored (draw/*, batch/*) and handed to ours."
    ),
    "shapes": {key: list(np.shape(value)) for key, value in sorted(arrays.items()) if not key.startswith("grad/")},
    "losses": losses,
    "total": "loss = loss_main + loss_reco + loss_regu; loss += loss_mask (main.py:135, 143), float32",
    "official_lines": {
        "loss_main": [
            line("main.py", "124-127"),
            line("utils.py", "52-63 (cross_entropy)"),
            line("model.py", "109-236"),
        ],
        "loss_reco": [
            line("main.py", "129-131"),
            line("main.py", "80-101 (sample_pos_edges, sample_neg_edges)"),
            line("model.py", "68-94 (Decoder)"),
            line("model.py", "19-32, 102-107 (Encoder, GCNLayer)"),
        ],
        "loss_regu": [line("main.py", "133"), line("utils.py", "6-10 (calc_reg_loss)")],
        "loss_mask": [
            line("main.py", "117-119, 138-143"),
            line("model.py", "238-270 (LocalGraph, sparse_dropout 13-17)"),
            line("model.py", "272-319 (RandomMaskSubgraphs)"),
            line("utils.py", "22-30 (calc_reward)"),
        ],
        "loss": [line("main.py", "135, 143"), "backward at " + line("main.py", "152"), "opt.step (stopped) 153"],
        "scores": [line("main.py", "182-187 (test_epoch: Encoder over the full ii_adj, SASRec's last position)")],
        "graph": [line("construct.py", "8-23"), line("handler.py", "28, 38-52, 60-69")],
    },
    "patches": [
        "torch.Tensor.cuda and torch.nn.Module.cuda return their argument (CPU)",
        "the five modules' train() is a no-op: eval mode, dropout off, through main.py:104-108",
        "coach.opt.step raises to end the epoch after the first step's loss.backward() (weights never updated)",
        "recorders (they call the official function unchanged and keep its inputs/outputs): torch.rand, "
        "torch.randperm, Tensor.backward, model.sparse_dropout, Coach.sample_pos_edges/sample_neg_edges/calc_res, "
        "the sampler/masker/decoder forward, main.cross_entropy/calc_reward/calc_reg_loss, "
        "SeqRecTrnDataset.__getitem__, the train loader's collate_fn; a forward hook on the recommender",
        "construct.seqs set before construct_graphs (it iterates the module-level name, construct.py:11)",
    ],
    "observations": {
        "seeds (candidates)": candidates.tolist(),
        "masked edges": int(len(masked_edge)),
        "graph edges": int(handler.ii_adj._nnz()),
        "encoder graph edges": int(encoder_adj._nnz()),
        "reward": reward,
        "test hr@10, ndcg@10 (41 ids: the answer and every item)": [test_result["hr@10"], test_result["ndcg@10"]],
    },
    "parameter_names": grad_names,
    "npz_sha256": digest,
}
save_record(OUT, NAME, record, {work: "<work>"})
shutil.rmtree(work)  # the official data files
print(json.dumps(losses, indent=1))
print("npz", npz_path, os.path.getsize(npz_path), "bytes, sha256", digest)

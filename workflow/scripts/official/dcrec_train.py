#!/usr/bin/env python
"""Maintainer command: the OFFICIAL DCRec (HKUDS/DCRec) on a tiny item set, one training step and the
full score matrix of its evaluation batch, written as tests/data/official/dcrec_train.{npz,json}
(docs/OFFICIAL.md), which tests/test_official_dcrec.py compares ours against.

The official code needs DGL, which this project does not install; make a separate environment:

    python3 -m venv venv-dgl
    venv-dgl/bin/pip install torch==2.13.0
    venv-dgl/bin/pip install dgl==1.1.1 "numpy<2" scipy "pandas<2" scikit-learn pyyaml colorlog==4.7.2 \
        colorama==0.4.4 tqdm tabulate tensorboard setproctitle
    git clone https://github.com/HKUDS/DCRec
    git -C DCRec checkout 23382332f79351b1340033946982b4dd93ae46ae
    DGLBACKEND=pytorch venv-dgl/bin/python workflow/scripts/official/dcrec_train.py DCRec

(pandas 3.0.6 breaks RecBole's data loading, "Length of values (1) does not match length of index";
1.5.3 works. DGL 1.1.1 is the version the authors' second implementation, SSLRec's dcrec_seq.py,
names; it imports with torch 2.13 on the CPU: its GraphConv and add_self_loop are plain graph kernels.)

Nothing of the official code is copied here. run_DCRec.py is executed from its own source (via
`ast`): its top-level imports and functions, then the statements of its `__main__` block with
`--dataset beauty` (the Beauty settings, run_DCRec.py:250-264) up to and including the construction
of the model and the trainer (run_DCRec.py:204-334); the only changes are tiny sizes put into its
`config_dict` before `Config(...)` (TINY below: hidden 32, inner 128, a batch of 16 prefix examples,
the data folder) -- every other setting is the official one. The data are the first 10 users of
tests/data/benchmark/Beauty.txt (42 items), written in the official benchmark layout: for a
sequence s_1..s_n the training line is (s_1..s_{n-3}, s_{n-2}) and the test line (s_1..s_{n-2},
s_{n-1}), as beauty.{train,test}.inter are (each test history is its training history plus the
training target); RecBole remaps the tokens to its own ids, which are recorded and used everywhere.

The training step is the official `Trainer._train_epoch` (recbole/trainer/trainer.py:152-196) on a
one-batch loader holding the first batch of the official shuffled training loader (16 of the prefix
examples `sequential_augmentation` made), with `model.train` made a no-op (eval mode: dropout off;
the GCN's edge dropout runs in eval mode too) and `optimizer.step` a no-op. The random draws are
recorded by thin wrappers around the official functions, which they call unchanged:
`graph_dropout` (dcrec.py:95-107: the torch.randint edge indices, drawn with replacement, and the
graph it drops them from, after dgl.add_self_loop) for each of its calls, and the `torch.normal`
draw of the KL prior (dcrec.py:369); `random.sample` (dcrec.py:44, 51, the neighbour sampling) is
watched and never called (no item has more than 10 neighbours here). The scores are the official
`fast_predict` (dcrec.py:428-455, eval mode, no_grad) on the first batch of the official test
loader, with its 101 sampled candidates replaced by every item row (so the full score matrix).
torch is seeded (2020, the official seed) right before the step and again before the scoring.
The npz is written with fixed zip timestamps, so a second run gives the same bytes.
"""

import argparse
import ast
import json
import os
import sys
import tempfile

import numpy as np
import torch
from fixture import save_arrays, save_record

torch.set_num_threads(1)

REPOSITORY = "HKUDS/DCRec"
COMMIT = "23382332f79351b1340033946982b4dd93ae46ae"
SEED = 2020  # run_DCRec.py:208
USERS = 10  # the first users of tests/data/benchmark/Beauty.txt
TINY = {"hidden_size": 32, "inner_size": 128, "train_batch_size": 16, "eval_batch_size": 8, "show_progress": False}
DCREC = "recbole/model/sequential_recommender/dcrec.py"
TRAIN_GRAPHS = ["train_adjacency", "train_similarity", "train_augmented"]  # the order calculate_loss_graphcl runs
EVAL_GRAPHS = ["eval_adjacency", "eval_similarity"]  # the order fast_predict runs them

cli = argparse.ArgumentParser()
cli.add_argument("checkout")
cli.add_argument("--sequences", default="tests/data/benchmark/Beauty.txt")
cli.add_argument("--out", default="tests/data/official")
opt = cli.parse_args()

CHECKOUT = os.path.abspath(opt.checkout)
OUT = os.path.abspath(opt.out)
os.makedirs(OUT, exist_ok=True)
work = tempfile.mkdtemp(prefix="dcrec-official-")

# ----------------------------------------------------------------------------------------------
# 1. The tiny data set in the official benchmark layout (dataset/beauty/beauty.{train,test}.inter).
# ----------------------------------------------------------------------------------------------
with open(opt.sequences) as handle:
    lines = [line.split() for line in handle][:USERS]
# RecBole pads a token_seq field to the longest sequence of the data, and sequential_augmentation pads the
# prefixes to MAX_ITEM_LIST_LENGTH (run_DCRec.py:173, 180): the official code needs the two equal (on Beauty
# some history is 50 long); here the longest history, the test history s_1..s_(n-2) of the longest user
TINY["MAX_ITEM_LIST_LENGTH"] = max(len(items) for _, *items in lines) - 2
os.makedirs(os.path.join(work, "data", "beauty"))
header = "session_id:token\titem_id_list:token_seq\titem_id:token\n"
for part, (history_end, target) in {"train": (-3, -3), "test": (-2, -2)}.items():
    with open(os.path.join(work, "data", "beauty", f"beauty.{part}.inter"), "w") as handle:
        handle.write(header)
        for user, *items in lines:
            handle.write(f"{user}\t{' '.join(items[:history_end])}\t{items[target]}\n")

# ----------------------------------------------------------------------------------------------
# 2. run_DCRec.py's own statements: top level (imports, functions), then its __main__ block up to
#    the model and the trainer, with --dataset beauty and TINY put into config_dict before Config.
# ----------------------------------------------------------------------------------------------
sys.path.insert(0, CHECKOUT)
script = os.path.join(CHECKOUT, "run_DCRec.py")
with open(script) as handle:
    tree = ast.parse(handle.read(), filename=script)


def is_main(node):
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)


main_block = next(node for node in tree.body if is_main(node))
namespace = {"__name__": "official_run_DCRec"}


def run(statements):
    exec(compile(ast.Module(body=list(statements), type_ignores=[]), script, "exec"), namespace)


os.chdir(work)  # the official logger writes ./log/
sys.argv = ["run_DCRec.py", "--dataset", "beauty"]
run(node for node in tree.body if not is_main(node))
executed = []
for statement in main_block.body:
    if isinstance(statement, ast.Try):
        for inner in statement.body:
            run([inner])
            executed.append(inner.lineno)
            if isinstance(inner, ast.Assign) and ast.unparse(inner.targets[0]) == "trainer":
                break
        break
    if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "config":
        namespace["config_dict"].update(TINY | {"data_path": os.path.join(work, "data")})
    run([statement])
    executed.append(statement.lineno)
config, config_dict = namespace["config"], namespace["config_dict"]
model, trainer = namespace["model"], namespace["trainer"]
train_dataset, test_dataset = namespace["train_dataset"], namespace["test_dataset"]
train_data, test_data = namespace["train_data"], namespace["test_data"]
official = sys.modules["recbole.model.sequential_recommender.dcrec"]
import dgl  # noqa: E402  (the official module imported it)

assert str(config["device"]) == "cpu"

# the official ids: RecBole's remapping of the tokens
items = test_dataset.field2id_token["item_id"]
users = test_dataset.field2id_token["session_id"]


def histories(dataset):
    """Each line's history (official item ids), by official user id."""
    feat = dataset.inter_feat
    rows = {}
    for line in range(len(feat)):
        length = int(feat["item_length"][line])
        rows[int(feat["session_id"][line])] = (feat["item_id_list"][line][:length].tolist(), int(feat["item_id"][line]))
    return rows


test_histories = histories(test_dataset)

# ----------------------------------------------------------------------------------------------
# 3. Instrument: record every random draw; the official functions run unchanged.
# ----------------------------------------------------------------------------------------------
draws, priors, samples, captured = [], [], [], {}
original_graph_dropout = official.graph_dropout
original_sample = official.random.sample


def graph_dropout(g, keep_prob):
    source, destination = g.edges()
    record = {"source": source.clone(), "destination": destination.clone(), "weight": g.edata["w"].detach().clone()}
    randint = torch.randint

    def recorded(*args, **kwargs):
        drawn = randint(*args, **kwargs)
        record["dropped"] = drawn.clone()
        return drawn

    torch.randint = recorded
    try:
        result = original_graph_dropout(g, keep_prob)
    finally:
        torch.randint = randint
    draws.append(record)
    return result


def sample(population, k, *args, **kwargs):
    samples.append(k)
    return original_sample(population, k, *args, **kwargs)


official.graph_dropout = graph_dropout
official.random.sample = sample
original_loss = model.calculate_loss
original_agreement = model._subgraph_agreement


def calculate_loss(interaction):
    normal = torch.normal

    def recorded(*args, **kwargs):
        drawn = normal(*args, **kwargs)
        priors.append(drawn.clone())
        return drawn

    torch.normal = recorded
    try:
        losses = original_loss(interaction)
    finally:
        torch.normal = normal
    captured["losses"] = losses
    return losses


def subgraph_agreement(*args, **kwargs):
    weights = original_agreement(*args, **kwargs)
    captured["agreement"] = weights.detach().clone()
    return weights


def check_nan(loss):
    captured["total"] = loss.detach().clone()
    return original_check_nan(loss)


model.calculate_loss = calculate_loss
model._subgraph_agreement = subgraph_agreement
original_check_nan = trainer._check_nan
trainer._check_nan = check_nan
trainer.optimizer.step = lambda *args, **kwargs: None
model.eval()
model.train = lambda mode=True: model

# ----------------------------------------------------------------------------------------------
# 4. One official training step on the first batch of the official shuffled loader.
# ----------------------------------------------------------------------------------------------
batch = next(iter(train_data))
weights = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
for parameter in model.parameters():
    parameter.grad = None
torch.manual_seed(SEED)
totals = trainer._train_epoch([batch], 0, show_progress=False)
assert len(draws) == 3 and len(priors) == 1 and not samples, (len(draws), len(priors), samples)
train_draws = dict(zip(TRAIN_GRAPHS, draws, strict=True))
ce, graph_cl, kl = captured["losses"]
assert captured["total"].item() == sum(totals) or abs(captured["total"].item() - sum(totals)) < 1e-6

# ----------------------------------------------------------------------------------------------
# 5. The official scores: fast_predict on the first test batch, every item row a candidate.
# ----------------------------------------------------------------------------------------------
draws.clear()
interaction = next(iter(test_data))[0]
vocab = model.item_embedding.weight.shape[0]
interaction.update(type(interaction)({"item_id_with_negs": torch.arange(vocab).repeat(len(interaction), 1)}))
torch.manual_seed(SEED)
with torch.no_grad():
    scores = model.fast_predict(interaction)
assert len(draws) == 2 and not samples
eval_draws = dict(zip(EVAL_GRAPHS, draws, strict=True))

# the self-loops dgl.add_self_loop gave (the last `nodes` edges of each graph the GCN propagates over)
nodes = model.item_adjgraph.num_nodes()
loop_weights = torch.cat([record["weight"][-nodes:] for record in (train_draws | eval_draws).values()])
assert all(
    torch.equal(record["source"][-nodes:], torch.arange(nodes))
    and torch.equal(record["destination"][-nodes:], torch.arange(nodes))
    for record in (train_draws | eval_draws).values()
)
self_loop_weight = float(loop_weights[0])
assert torch.all(loop_weights == self_loop_weight)

# ----------------------------------------------------------------------------------------------
# 6. Save.
# ----------------------------------------------------------------------------------------------
arrays = {}
for name, value in weights.items():
    arrays[f"weight/{name}"] = value.numpy().astype(np.float32)
for name, parameter in model.named_parameters():
    grad = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
    arrays[f"grad/{name}"] = grad.detach().numpy().astype(np.float32)
for field in ("session_id", "item_id_list", "item_length", "item_id"):
    arrays[f"batch/{field}"] = batch[field].numpy().astype(np.int64)
for field in ("session_id", "item_id_list", "item_length", "item_id"):
    arrays[f"eval/{field}"] = interaction[field].numpy().astype(np.int64)
for name, record in (train_draws | eval_draws).items():
    arrays[f"graph/{name}/source"] = record["source"].numpy().astype(np.int64)
    arrays[f"graph/{name}/destination"] = record["destination"].numpy().astype(np.int64)
    arrays[f"graph/{name}/weight"] = record["weight"].numpy().astype(np.float32)
    arrays[f"draw/{name}/dropped"] = record["dropped"].numpy().astype(np.int64)
arrays["draw/prior"] = priors[0].numpy().astype(np.float32)
# the official histories (official ids): user u's test history is ours s_1..s_{n-2}, the training sequence
official_users = sorted(test_histories)
arrays["data/users"] = np.array(official_users, dtype=np.int64)
arrays["data/lengths"] = np.array([len(test_histories[user][0]) for user in official_users], dtype=np.int64)
arrays["data/items"] = np.concatenate([test_histories[user][0] for user in official_users]).astype(np.int64)
arrays["loss/ce"] = np.float64(ce.item())
arrays["loss/graph_cl"] = np.float64(graph_cl.item())
arrays["loss/kl"] = np.float64(kl.item())
arrays["loss/total"] = np.float64(captured["total"].item())
arrays["scores"] = scores.numpy().astype(np.float32)
arrays["debug/conformity_weights"] = captured["agreement"].numpy().astype(np.float32)  # before the len-1 rule
for key, value in arrays.items():
    if np.issubdtype(np.asarray(value).dtype, np.floating):
        assert np.all(np.isfinite(value)), key


npz_path, _ = save_arrays(OUT, "dcrec_train", arrays)


def line(path, lines):
    return f"{path}:{lines}"


settings = {key: config[key] for key in sorted(config_dict) if key not in ("data_path", "gpu_id")}
settings |= {
    key: config[key]
    for key in ("n_layers", "n_heads", "hidden_size", "inner_size", "hidden_act", "layer_norm_eps")
    + ("initializer_range", "loss_type", "MAX_ITEM_LIST_LENGTH", "learning_rate")
}
record = {
    "repository": REPOSITORY,
    "commit": COMMIT,
    "command": "DGLBACKEND=pytorch venv-dgl/bin/python workflow/scripts/official/dcrec_train.py DCRec",
    "torch_version": torch.__version__,
    "dgl_version": dgl.__version__,
    "numpy_version": np.__version__,
    "seed": SEED,
    "data": (
        f"the first {USERS} users of tests/data/benchmark/Beauty.txt: training line (s_1..s_(n-3), s_(n-2)), "
        "test line (s_1..s_(n-2), s_(n-1)); data/items + data/lengths hold each official user's test history "
        "(official ids), i.e. our training sequence s_1..s_(n-2)"
    ),
    "official_ids": {"items": list(items), "users": list(users)},
    "items": len(items) - 1,
    "vocab": vocab,
    "tiny": TINY,
    "settings": {
        key: (value if isinstance(value, (int, float, str, bool, list)) else str(value))
        for key, value in settings.items()
    },
    "executed_lines": f"run_DCRec.py: top level, then __main__ lines {executed}",
    "batch": (
        "first batch of the official train loader (shuffle=True, train_batch_size 16) after "
        "sequential_augmentation; items first, padding after (RecBole's layout)"
    ),
    "batch_examples": int(len(batch)),
    "eval_users": int(len(interaction)),
    "draws": {
        "edge dropout": (
            "graph_dropout (dcrec.py:95-107), once per GCN call: int(0.5 * edges) torch.randint indices with "
            "replacement into the edges of dgl.add_self_loop(graph) (dcrec.py:118; self-loops appended after the "
            "graph's own edges); graph/<name>/{source,destination,weight} is that graph in DGL's edge order, "
            "draw/<name>/dropped the indices"
        ),
        "order": TRAIN_GRAPHS + EVAL_GRAPHS,
        "prior": "torch.normal(weight_mean, 0.1, size=batch) at dcrec.py:369 (draw/prior)",
        "neighbour sampling": "random.sample (dcrec.py:44, 51) never called: no item has more than 10 neighbours",
    },
    "self_loop_weight": self_loop_weight,
    "self_loop_weight_note": (
        f"the weight dgl.add_self_loop (DGL {dgl.__version__}) gives the new self-loops' 'w' (fill_data=1.)"
    ),
    "losses": {name: float(arrays[f"loss/{name}"]) for name in ("ce", "graph_cl", "kl", "total")},
    "official_lines": {
        "ce": [line(DCREC, "409-421"), "logits + 1e-8 over every item_embedding row, nn.CrossEntropyLoss (mean)"],
        "graph_cl": [line(DCREC, "383-400"), line("recbole/model/layers.py", "82-86 (CLLayer.vanilla_loss)")],
        "kl": [line(DCREC, "364-373"), line(DCREC, "25-29 (cal_kl_1)"), line(DCREC, "210-227 (agreement)")],
        "total": [line("recbole/trainer/trainer.py", "181-190"), "sum(losses): ce + graph_cl + kl, backward"],
        "scores": [line(DCREC, "428-455 (fast_predict)")],
        "graphs": [
            line("run_DCRec.py", "24-90 (build_adj_graph)"),
            line("run_DCRec.py", "92-150 (build_sim_graph)"),
            line(DCREC, "73-92 (graph_augment)"),
            line(DCREC, "110-129 (GCN)"),
        ],
    },
    "patches": [
        "config_dict updated with TINY and data_path before Config(...) (run_DCRec.py:276)",
        "model.train -> no-op (eval mode, dropout off), trainer.optimizer.step -> no-op",
        "thin wrappers (record only): graph_dropout, torch.normal inside calculate_loss, random.sample, "
        "_subgraph_agreement, trainer._check_nan (the total)",
    ],
    "parameters": {name: list(value.shape) for name, value in weights.items()},
}
save_record(OUT, "dcrec_train", record)
print(json.dumps(record["losses"]), "self-loop weight", self_loop_weight, os.path.getsize(npz_path), "bytes")

"""Maintainer command: the OFFICIAL BPR-MF (the NGCF repository's TensorFlow baseline, NGCF/BPRMF.py)
on a tiny data set: its seeded initialisation, one batch of its own sampler, the BPR loss, the L2
term, their total, the gradient of both embedding tables (tf.gradients) and the score matrix its
evaluation computes, written as the fixture tests/data/official/bprmf_train.{npz,json} that
tests/test_official_bprmf.py compares ours against (docs/OFFICIAL.md).

    git clone https://github.com/xiangwang1223/neural_graph_collaborative_filtering
    git -C neural_graph_collaborative_filtering checkout a718a4f2df7c3942ca0df6759926975762c61eed
    python3 -m venv venv-tf && venv-tf/bin/pip install tensorflow-cpu scipy scikit-learn
    venv-tf/bin/python workflow/scripts/official/bprmf_train.py neural_graph_collaborative_filtering

(run from the repository root; tested with tensorflow-cpu 2.21.0, numpy 2.4, Python 3.11; no torch needed).

The official code is TensorFlow 1 (tf.placeholder, tf.Session, tf.contrib). It runs unchanged under
TensorFlow 2's `tf.compat.v1` with v2 behaviour disabled, through two shims made here, not in the
checkout: (1) `import tensorflow` inside the official modules gets `tf.compat.v1`
(sys.modules["tensorflow"]); (2) `tf.contrib.layers.xavier_initializer` (gone in TF 2) is
`tf.compat.v1.glorot_uniform_initializer`, which is what xavier_initializer() with its defaults
(uniform, factor 1, FAN_AVG) is.

The data: the first 20 users of tests/data/benchmark/Beauty.txt, items renumbered from 0 in order of
first appearance, written in the official format (train.txt: s_1..s_{n-2}; test.txt: s_{n-1} s_n)
to a temporary folder. The official modules are imported from the checkout's NGCF/ (BPRMF.py's
`__main__` is not run); utility/parser.py's defaults are used but for --data_path, --dataset and
--batch_size 16 (the default 1024 is more than the 20 users; with 16 <= n_users the sampler takes
16 distinct users, one positive and one negative each). Seeds: random 2019, numpy 2019,
tf.set_random_seed 2019. After that step's numbers (taken without an update), the official training
loop's optimiser: STEPS steps of the constructor's tf.train.RMSPropOptimizer (model.opt), each on a
fresh Data.sample() batch, from the same initialisation; the batches and both tables after them.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import types

import numpy as np
from fixture import save_arrays, save_record, sha256
from tf1 import tensorflow_v1

REPOSITORY = "github.com/xiangwang1223/neural_graph_collaborative_filtering"
COMMIT = "a718a4f2df7c3942ca0df6759926975762c61eed"
SEED = 2019
USERS = 20
BATCH_SIZE = 16
STEPS = 3  # RMSProp steps of the official loop, after the step compared without an update
OFFICIAL_LINES = {
    "mf_loss": "NGCF/BPRMF.py:75-86 create_bpr_loss (line 84): -reduce_mean(log(sigmoid(pos_scores - neg_scores)))",
    "reg_loss": "NGCF/BPRMF.py:79-80,85: decay * (l2_loss(u) + l2_loss(i) + l2_loss(j)) / batch_size, "
    "decay = regs[0] (utility/parser.py:35 '[1e-5,1e-5,1e-2]'); tf.nn.l2_loss(x) = sum(x**2) / 2",
    "total": "NGCF/BPRMF.py:55 self.loss = self.mf_loss + self.reg_loss",
    "scores": "NGCF/BPRMF.py:52 batch_ratings = u_e @ pos_i_e^T, fed every item (utility/batch_test.py:158-162)",
    "batch": "NGCF/utility/load_data.py:144-183 Data.sample (rd.sample users; np.random positive; negative "
    "uniform over 0..n_items-1, redrawn while in the user's train items)",
    "initialisation": "NGCF/BPRMF.py:64-73 xavier_initializer (glorot uniform)",
    "optimiser": "NGCF/BPRMF.py:58 tf.train.RMSPropOptimizer(learning_rate=args.lr), run STEPS times (168-170)",
}


def tiny_data(sequence_file, folder):
    """The first USERS users in the official format; returns (sequences renumbered, item map)."""
    sequences, items = [], {}
    with open(sequence_file) as handle:
        for line in list(handle)[:USERS]:
            raw = [int(token) for token in line.split()[1:]]
            sequences.append([items.setdefault(item, len(items)) for item in raw])
    os.makedirs(folder)
    with open(os.path.join(folder, "train.txt"), "w") as train, open(os.path.join(folder, "test.txt"), "w") as test:
        for user, sequence in enumerate(sequences):
            train.write(" ".join(map(str, [user, *sequence[:-2]])) + "\n")
            test.write(" ".join(map(str, [user, *sequence[-2:]])) + "\n")
    return sequences, items


def contrib(v1):
    """tf.contrib.layers.xavier_initializer() with its defaults (uniform, FAN_AVG) is glorot uniform."""
    return {"layers": types.SimpleNamespace(xavier_initializer=v1.glorot_uniform_initializer)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout")
    parser.add_argument("--sequences", default="tests/data/benchmark/Beauty.txt")
    parser.add_argument("--out-dir", default="tests/data/official")
    cli = parser.parse_args()
    code = os.path.join(os.path.abspath(cli.checkout), "NGCF")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    tf2, tf = tensorflow_v1(contrib)

    scratch = tempfile.mkdtemp()
    sequences, items = tiny_data(cli.sequences, os.path.join(scratch, "tiny"))
    # utility/batch_test.py parses sys.argv and loads the data when imported
    sys.argv = ["BPRMF.py", "--data_path", scratch + "/", "--dataset", "tiny", "--batch_size", str(BATCH_SIZE)]
    sys.path.insert(0, code)
    random.seed(SEED)
    np.random.seed(SEED)
    tf.set_random_seed(SEED)
    import BPRMF as official  # noqa: N813 (official module)

    args, data = official.args, official.data_generator
    model = official.BPRMF(data_config={"n_users": data.n_users, "n_items": data.n_items})
    variables = {"user_embedding": model.weights["user_embedding"], "item_embedding": model.weights["item_embedding"]}
    gradients = tf.gradients(model.loss, list(variables.values()))
    dense = [tf.convert_to_tensor(gradient) for gradient in gradients]  # IndexedSlices -> dense
    config = tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    sess = tf.Session(config=config)
    sess.run(tf.global_variables_initializer())
    weights = sess.run(variables)

    users, positives, negatives = data.sample()  # the official sampler, once
    feed = {model.users: users, model.pos_items: positives, model.neg_items: negatives}
    mf_loss, reg_loss, loss, grads = sess.run([model.mf_loss, model.reg_loss, model.loss, dense], feed_dict=feed)
    # evaluation: every item, as utility/batch_test.py:158-162
    scores = sess.run(model.batch_ratings, {model.users: users, model.pos_items: list(range(data.n_items))})

    out = {f"weight/{name}": value.astype(np.float32) for name, value in weights.items()}
    out["users"] = np.asarray(users, dtype=np.int64)
    out["pos_items"] = np.asarray(positives, dtype=np.int64)
    out["neg_items"] = np.asarray(negatives, dtype=np.int64)
    losses = {"mf_loss": float(mf_loss), "reg_loss": float(reg_loss), "loss": float(loss)}
    for name, value in losses.items():
        out[f"loss/{name}"] = np.float64(value)
    for name, gradient in zip(variables, grads, strict=True):
        rows = np.flatnonzero(np.abs(gradient).sum(axis=1) != 0)
        out[f"grad_rows/{name}"] = rows.astype(np.int64)
        out[f"grad/{name}"] = gradient[rows].astype(np.float32)
    out["scores"] = scores.astype(np.float32)
    # the official loop's optimiser: STEPS RMSProp steps, each on a fresh batch of its sampler (BPRMF.py:168-170)
    for step in range(STEPS):
        users, positives, negatives = data.sample()
        sess.run(model.opt, {model.users: users, model.pos_items: positives, model.neg_items: negatives})
        out[f"rmsprop/{step}/users"] = np.asarray(users, dtype=np.int64)
        out[f"rmsprop/{step}/pos_items"] = np.asarray(positives, dtype=np.int64)
        out[f"rmsprop/{step}/neg_items"] = np.asarray(negatives, dtype=np.int64)
    for name, value in sess.run(variables).items():
        out[f"rmsprop/after/{name}"] = value.astype(np.float32)
    out["sequences"] = np.asarray([item for sequence in sequences for item in sequence], dtype=np.int64)
    out["sequence_offsets"] = np.cumsum([0] + [len(sequence) for sequence in sequences]).astype(np.int64)

    npz, digest = save_arrays(cli.out_dir, "bprmf_train", out)
    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "venv-tf/bin/python workflow/scripts/official/bprmf_train.py neural_graph_collaborative_filtering",
        "framework": f"tensorflow {tf2.__version__} (tf.compat.v1, v2 behaviour disabled)",
        "numpy_version": np.__version__,
        "seed": {"random": SEED, "numpy": SEED, "tf.set_random_seed": SEED},
        "shims": [
            "sys.modules['tensorflow'] = tf.compat.v1 (after tf.compat.v1.disable_v2_behavior())",
            "tf.contrib.layers.xavier_initializer = tf.compat.v1.glorot_uniform_initializer",
        ],
        "data": (
            f"the first {USERS} users of {os.path.basename(cli.sequences)} (sha256 {sha256(cli.sequences)[:16]}), "
            "items renumbered from 0 by first appearance; train.txt s_1..s_{n-2}, test.txt s_{n-1} s_n; "
            "stored as sequences/sequence_offsets (renumbered)"
        ),
        "settings": {
            key: getattr(args, key) for key in ("embed_size", "batch_size", "regs", "lr", "layer_size", "epoch")
        },
        "sizes": {"n_users": data.n_users, "n_items": data.n_items, "items_renumbered": len(items)},
        "batch": "one call of the official Data.sample(): users, pos_items, neg_items (0-based official ids)",
        "rmsprop": (
            f"then {STEPS} steps of model.opt (tf.train.RMSPropOptimizer, lr {args.lr}, its defaults decay 0.9, "
            "momentum 0, epsilon 1e-10), each on a fresh Data.sample(): rmsprop/<step>/{users,pos_items,neg_items}; "
            "both tables after them: rmsprop/after/<name>"
        ),
        "losses": losses,
        "official_lines": OFFICIAL_LINES,
        "mode": "no dropout in BPR-MF; float32 on CPU, one thread",
        "shapes": {key: list(value.shape) for key, value in out.items()},
        "notes": (
            "grad/<name>: the gradient of `loss` (tf.gradients, IndexedSlices made dense), stored as the "
            "rows with a nonzero gradient (grad_rows/<name>); scores: batch_ratings of the batch's users "
            "against every official item 0..n_items-1"
        ),
    }
    save_record(cli.out_dir, "bprmf_train", record)
    print(json.dumps({"losses": losses, "npz_bytes": os.path.getsize(npz), "sha256": digest}, indent=1))


if __name__ == "__main__":
    main()

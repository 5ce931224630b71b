"""Maintainer command: the OFFICIAL GRU4Rec (the code the paper's Table 12 names:
slientGe/Sequential_Recommendation_Tensorflow, models/GRU4Rec, TensorFlow 1) on a tiny data set: its
own windows (make_datasets.py) and batch with its negatives (DataInput.py), its seeded
initialisation, the per-window BPR loss, the gradient of every variable (tf.gradients, as its
training loop takes them: of the per-window losses, i.e. of their sum) with their global norm, and
the scores of its prediction, written as the fixture tests/data/official/gru4rec_train.{npz,json}
that tests/test_official_gru4rec.py compares ours against (docs/OFFICIAL.md).

    git clone https://github.com/slientGe/Sequential_Recommendation_Tensorflow
    git -C Sequential_Recommendation_Tensorflow checkout f06053cd7a0bfb101872cf9f91885edea1fe50df
    python3 -m venv venv-tf && venv-tf/bin/pip install tensorflow-cpu tf_keras pandas tqdm
    venv-tf/bin/python workflow/scripts/official/gru4rec_train.py Sequential_Recommendation_Tensorflow

(run from the repository root; tested with tensorflow-cpu 2.21.0, tf_keras 2.21.0, Python 3.11; no torch
needed; TF_USE_LEGACY_KERAS=1, set here, keeps TF 1's RNN cells, which Keras 3 dropped).

The official code is TensorFlow 1 (tf.placeholder, tf.Session, tf.contrib.rnn). It runs unchanged under
TensorFlow 2's `tf.compat.v1` through shims made here, not in the checkout: `import tensorflow` in the
official module gets `tf.compat.v1`; `tensorflow.contrib.rnn` is `tf.compat.v1.nn.rnn_cell` (where TF 1
put contrib.rnn's GRUCell, DropoutWrapper, MultiRNNCell); the package name its imports use,
`Sequential_Recommendation`, is the checkout; and DataInput's `random.sample(set, k)`, which Python 3.11
refuses for a set, is given the set sorted (the same draw from the same population).

The data: 24 users of 7 to 12 items over 24 items (numpy seed SEED), each item more than 5 times (the
official filter keeps only those), fed without each user's last item (our test item), so the official
training items are our s_1..s_{n-2} and its test item our validation item. Settings: run_GRU4Rec.py's
defaults (len_Seq 5, len_Tag 1, neg_sample 10, layers 1; the model is built as run_GRU4Rec.py:62 builds
it, so its loss is the constructor's default BPR) but for emb_size EMB (tiny) and a first batch of BATCH
windows; keep_prob 1 (dropout off). Seeds: random SEED, numpy SEED, tf.set_random_seed SEED.
"""

import argparse
import json
import os
import random
import sys
import types

import numpy as np
from fixture import save_arrays, save_record
from tf1 import tensorflow_v1

REPOSITORY = "github.com/slientGe/Sequential_Recommendation_Tensorflow"
COMMIT = "f06053cd7a0bfb101872cf9f91885edea1fe50df"
SEED = 7
USERS, ITEMS, EMB, BATCH, WINDOW, NEGATIVES = 24, 24, 16, 16, 5, 10
OFFICIAL_LINES = {
    "windows": "make_datasets.py:47-58: for i in range(len_Seq, len(train) - len_Tag + 1): seq train[i-5:i], "
    "target train[i]",
    "negatives": "DataInput.py:71-74: random.sample(all_items - the user's training items, neg_sample)",
    "model": "models/GRU4Rec/model_GRU4rec.py:27-58: item_emb, GRUCell + DropoutWrapper(output), last output, W, b",
    "loss": "model_GRU4rec.py:61-63 loss_BPR: -reduce_mean(log(sigmoid(pos - neg)), -1), one value per window",
    "gradients": "run_GRU4Rec.py:79-83: tf.gradients(loss, tvars) (the per-window losses summed), "
    "clip_by_global_norm 5, Adam 1e-3",
    "scores": "model_GRU4rec.py:69-72 predict: sigmoid(output @ W^T + b^T), fed the test windows",
}


def tiny_frame():
    """USERS users, items 101.. (raw ids), each raw item more than 5 times; timestamps in order."""
    import pandas as pd

    generator = np.random.default_rng(SEED)
    while True:
        sequences = [list(101 + generator.choice(ITEMS, int(generator.integers(7, 13)))) for _ in range(USERS)]
        counts = np.bincount([item - 101 for sequence in sequences for item in sequence[:-1]], minlength=ITEMS)
        if counts.min() > 5 and all(len(s) >= WINDOW + 2 for s in sequences):
            break
    rows = [(user + 1, item, 1, time) for user, sequence in enumerate(sequences) for time, item in enumerate(sequence)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rateing", "timestamps"])
    last = frame.groupby("user")["timestamps"].transform("max")
    return frame[frame["timestamps"] < last].reset_index(drop=True), sequences  # without our test item


def official_package(checkout):
    """The package name the official imports use, `Sequential_Recommendation`, made the checkout."""
    sys.path.insert(0, checkout)
    import make_datasets

    package = types.ModuleType("Sequential_Recommendation")
    package.__path__ = [checkout]
    sys.modules["Sequential_Recommendation"] = package
    sys.modules["Sequential_Recommendation.make_datasets"] = make_datasets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout")
    parser.add_argument("--out-dir", default="tests/data/official")
    cli = parser.parse_args()
    checkout = os.path.abspath(cli.checkout)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf2, tf = tensorflow_v1(lambda v1: {"rnn": v1.nn.rnn_cell})
    official_package(checkout)
    sys.path.insert(0, os.path.join(checkout, "models", "GRU4Rec"))
    random.seed(SEED)
    np.random.seed(SEED)
    tf.set_random_seed(SEED)
    import DataInput
    from make_datasets import make_datasets
    from model_GRU4rec import GRU4Rec

    sample = DataInput.random.sample
    DataInput.random = types.SimpleNamespace(
        sample=lambda population, k: sample(sorted(population) if isinstance(population, set) else population, k),
        seed=random.seed,
    )

    frame, raw = tiny_frame()
    d_train, d_test, d_info = make_datasets(frame, WINDOW, 1, 1)
    num_usr, num_item, items_usr_clicked, user_map, item_map = d_info
    all_items = list(range(num_item))
    iterator = DataInput.DataIterator("train", d_train, BATCH, NEGATIVES, all_items, items_usr_clicked, shuffle=True)
    _, batch_seq, batch_pos, batch_neg = next(iter(iterator))  # the first batch, in make_datasets' order

    model = GRU4Rec(EMB, num_usr, num_item, WINDOW, 1, 1)  # as run_GRU4Rec.py:62 builds it
    tvars = tf.trainable_variables()
    gradients = [tf.convert_to_tensor(gradient) for gradient in tf.gradients(model.loss, tvars)]
    global_norm = tf.global_norm(gradients)
    scores = model.predict()
    config = tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    sess = tf.Session(config=config)
    sess.run(tf.global_variables_initializer())
    names = [variable.name.removesuffix(":0") for variable in tvars]
    weights = sess.run(tvars)
    feed = {model.input_Seq: batch_seq, model.input_PosT: batch_pos, model.input_NegT: batch_neg}
    feed[model.input_keepprob] = 1.0
    loss, grads, norm = sess.run([model.loss, gradients, global_norm], feed)
    test_seqs = np.asarray(list(d_test["seq"].values), dtype=np.int64)
    test_scores = sess.run(scores, {model.input_Seq: test_seqs, model.input_keepprob: 1.0})

    out = {f"weight/{name}": value.astype(np.float32) for name, value in zip(names, weights, strict=True)}
    for name, gradient in zip(names, grads, strict=True):
        out[f"grad/{name}"] = gradient.astype(np.float32)
    out["loss/windows"] = loss.astype(np.float64)  # [BATCH, 1]
    out["loss/total"] = np.float64(loss.sum())
    out["global_norm"] = np.float64(norm)
    out["batch/seq"] = np.asarray(batch_seq, dtype=np.int64)
    out["batch/pos"] = np.asarray(batch_pos, dtype=np.int64)
    out["batch/neg"] = np.asarray(batch_neg, dtype=np.int64)
    out["batch/user"] = np.asarray(d_train["user"].values[:BATCH], dtype=np.int64)
    out["windows/user"] = d_train["user"].values.astype(np.int64)
    out["windows/seq"] = np.asarray(list(d_train["seq"].values), dtype=np.int64)
    out["windows/target"] = np.asarray(list(d_train["target"].values), dtype=np.int64)[:, 0]
    out["test/user"] = d_test["user"].values.astype(np.int64)
    out["test/seq"] = test_seqs
    out["test/scores"] = test_scores.astype(np.float32)
    # each user's items in official ids (its training items and its test item = our validation item)
    users = sorted(items_usr_clicked)
    tests = dict(zip(d_test["user"].values, d_test["target"].values, strict=True))
    sequences = [list(items_usr_clicked[user]) + list(tests[user]) for user in users]
    out["sequences"] = np.asarray([item for sequence in sequences for item in sequence], dtype=np.int64)
    out["sequence_offsets"] = np.cumsum([0] + [len(sequence) for sequence in sequences]).astype(np.int64)

    npz, digest = save_arrays(cli.out_dir, "gru4rec_train", out)
    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "venv-tf/bin/python workflow/scripts/official/gru4rec_train.py Sequential_Recommendation_Tensorflow",
        "framework": f"tensorflow {tf2.__version__} (tf.compat.v1, v2 behaviour disabled)",
        "numpy_version": np.__version__,
        "seed": {"random": SEED, "numpy": SEED, "tf.set_random_seed": SEED},
        "shims": [
            "sys.modules['tensorflow'] = tf.compat.v1 (after tf.compat.v1.disable_v2_behavior())",
            "sys.modules['tensorflow.contrib'].rnn = tf.compat.v1.nn.rnn_cell",
            "sys.modules['Sequential_Recommendation'] = the checkout (its own package name)",
            "DataInput.random.sample: a set population sorted first (Python 3.11 refuses sets)",
        ],
        "data": f"{USERS} users of 7-12 items over {ITEMS} raw items (numpy default_rng({SEED})), the last item of "
        "each left out; official ids from make_datasets (1-based, 0 = padding); stored as sequences/"
        "sequence_offsets (each user's official training items, then its official test item)",
        "settings": {"emb_size": EMB, "len_Seq": WINDOW, "len_Tag": 1, "neg_sample": NEGATIVES, "batch_size": BATCH,
                     "layers": 1, "loss_fun": "BPR (the model's default; run_GRU4Rec.py does not pass --loss_fun)",
                     "keep_prob": 1.0},
        "sizes": {"num_usr": int(num_usr), "num_item": int(num_item), "windows": len(d_train), "raw_items": ITEMS},
        "parameter_names": names,
        "losses": {"total": float(loss.sum())},
        "global_norm": float(norm),
        "official_lines": OFFICIAL_LINES,
        "mode": "keep_prob 1 (dropout off); float32 on CPU, one thread",
        "shapes": {key: list(value.shape) for key, value in out.items()},
        "raw_sequences": [[int(item) for item in sequence] for sequence in raw],
    }
    save_record(cli.out_dir, "gru4rec_train", record)
    print(json.dumps({"loss": float(loss.sum()), "norm": float(norm), "npz_bytes": os.path.getsize(npz),
                      "sha256": digest}, indent=1))


if __name__ == "__main__":
    main()

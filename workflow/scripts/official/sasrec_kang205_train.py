"""Maintainer command: the OFFICIAL SASRec (the code the paper's Table 12 names: kang205/SASRec,
TensorFlow 1) on a tiny data set: its own data_partition, a batch of its own sampler (sampler.py,
negatives included), its seeded initialisation, the BCE loss, the gradient of every variable and the
scores of every item at the last position of util.evaluate's test inputs, written as the fixture
tests/data/official/sasrec_kang205_train.{npz,json} that tests/test_official_sasrec.py compares ours
(variant `kang205`) against (docs/OFFICIAL.md).

    git clone https://github.com/kang205/SASRec
    git -C SASRec checkout e3738967fddab206d6eeb4fda433e7a7034dd8b1
    python3 -m venv venv-tf && venv-tf/bin/pip install tensorflow-cpu tf_keras
    venv-tf/bin/python workflow/scripts/official/sasrec_kang205_train.py SASRec

(run from the repository root; tested with tensorflow-cpu 2.21.0, tf_keras 2.21.0, Python 3.11; no torch
needed). The official model.py and modules.py run unchanged under `tf.compat.v1` (tf1.py), with
`tf.contrib.layers.l2_regularizer` given as TF 1 gives it for the default l2_emb 0 (no term); main.py and
util.py are Python 2 (print statements) and are not run: main.py's argument defaults and util.py's
data_partition are replayed here (`data_partition`).

The data: 24 users of 6 to 12 items over 30 items (numpy seed SEED), split as data_partition splits
them: the last two items are validation and test. Settings: main.py's defaults (2 blocks, dropout 0.5, l2_emb 0) but
for hidden_units HIDDEN, num_heads HEADS (2, so the head split is compared), maxlen MAXLEN (shorter than
some users, so inputs are cut) and a batch
of BATCH; is_training False (dropout off). The batch is the first of sample_function (sampler.py) with
seed SEED; tf.set_random_seed SEED.
"""

import argparse
import contextlib
import json
import os
import sys
import types

import numpy as np
from fixture import save_arrays, save_record
from tf1 import tensorflow_v1

REPOSITORY = "github.com/kang205/SASRec"
COMMIT = "e3738967fddab206d6eeb4fda433e7a7034dd8b1"
SEED = 11
USERS, ITEMS, HIDDEN, HEADS, BLOCKS, MAXLEN, BATCH = 24, 30, 16, 2, 2, 8, 8
OFFICIAL_LINES = {
    "data": "util.py:8-38 data_partition: train s_1..s_{n-2}, valid s_{n-1}, test s_n",
    "batch": "sampler.py:12-33: a random user with >1 training item; input train[:-1] right-aligned, targets "
    "train[1:], one negative per target outside set(train)",
    "model": "model.py:13-69: embedding x sqrt(d) + positions, dropout, x mask; blocks: attention with queries "
    "LN(x), keys and values x, + LN(x); FFN of LN(x), + LN(x); x mask; final LN",
    "attention": "modules.py:125-213 multihead_attention: no output projection, key and causal masks -2^32+1, "
    "query mask, residual to the queries",
    "loss": "model.py:85-89: sum(-log(sigmoid(pos)+1e-24) - log(1-sigmoid(neg)+1e-24)) over targets / targets",
    "optimiser": "model.py:100: AdamOptimizer(lr, beta2=0.98)",
    "scores": "model.py:76-80 and util.py:63-75: the last position of [train, valid] against item embeddings",
}


def tiny_sequences():
    generator = np.random.default_rng(SEED)
    return [list(1 + generator.choice(ITEMS, int(generator.integers(6, 13)))) for _ in range(USERS)]


def data_partition(sequences):
    """util.py:8-38 for users of 3 items or more: (user_train, user_valid, user_test, usernum, itemnum)."""
    train = {user: items[:-2] for user, items in enumerate(sequences, 1)}
    valid = {user: [items[-2]] for user, items in enumerate(sequences, 1)}
    test = {user: [items[-1]] for user, items in enumerate(sequences, 1)}
    return train, valid, test, len(sequences), max(max(items) for items in sequences)


class FirstBatch:
    """A result queue that keeps sample_function's first batch and stops its endless loop."""

    batch = None

    def put(self, batch):
        FirstBatch.batch = [np.asarray(column) for column in batch]
        raise StopIteration


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout")
    parser.add_argument("--out-dir", default="tests/data/official")
    cli = parser.parse_args()
    checkout = os.path.abspath(cli.checkout)
    out_dir = os.path.abspath(cli.out_dir)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.layers.dense / conv1d / dropout
    # TF 1's l2_regularizer(0.0) returns a function that adds no loss
    no_term = types.SimpleNamespace(l2_regularizer=lambda scale: (lambda weights: None) if scale == 0 else None)
    tf2, tf = tensorflow_v1(lambda v1: {"layers": no_term})
    sys.path.insert(0, checkout)
    np.random.seed(SEED)
    tf.set_random_seed(SEED)
    import sampler
    from model import Model

    sequences = tiny_sequences()
    user_train, user_valid, user_test, usernum, itemnum = data_partition(sequences)
    with contextlib.suppress(StopIteration):  # FirstBatch stops its endless loop
        sampler.sample_function(user_train, usernum, itemnum, BATCH, MAXLEN, FirstBatch(), SEED)
    users, seq, pos, neg = FirstBatch.batch

    args = types.SimpleNamespace(
        maxlen=MAXLEN, hidden_units=HIDDEN, num_blocks=BLOCKS, num_heads=HEADS, dropout_rate=0.5, l2_emb=0.0, lr=0.001
    )
    model = Model(usernum, itemnum, args)
    tvars = tf.trainable_variables()
    gradients = [tf.convert_to_tensor(gradient) for gradient in tf.gradients(model.loss, tvars)]
    table = tvars[0]  # SASRec/input_embeddings/lookup_table, row 0 zero-padded as model.py looks it up
    padded = tf.concat((tf.zeros(shape=[1, HIDDEN]), table[1:, :]), 0)
    scores = tf.matmul(model.seq[:, -1, :], padded, transpose_b=True)
    config = tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    sess = tf.Session(config=config)
    sess.run(tf.global_variables_initializer())
    names = [variable.name.removesuffix(":0") for variable in tvars]
    weights = sess.run(tvars)
    feed = {model.u: users, model.input_seq: seq, model.pos: pos, model.neg: neg, model.is_training: False}
    loss, grads = sess.run([model.loss, gradients], feed)
    # util.evaluate's test input: the training items and the validation item, right-aligned
    test_input = np.zeros([usernum, MAXLEN], dtype=np.int32)
    for user in range(1, usernum + 1):
        items = (user_train[user] + user_valid[user])[-MAXLEN:]
        test_input[user - 1, MAXLEN - len(items) :] = items
    test_scores = sess.run(scores, {model.input_seq: test_input, model.is_training: False})

    out = {f"weight/{name}": value.astype(np.float32) for name, value in zip(names, weights, strict=True)}
    for name, gradient in zip(names, grads, strict=True):
        out[f"grad/{name}"] = np.asarray(gradient, dtype=np.float32)
    out["loss/total"] = np.float64(loss)
    out["batch/user"] = users.astype(np.int64)
    out["batch/seq"] = seq.astype(np.int64)
    out["batch/pos"] = pos.astype(np.int64)
    out["batch/neg"] = neg.astype(np.int64)
    out["test/seq"] = test_input.astype(np.int64)
    out["test/scores"] = test_scores.astype(np.float32)
    out["sequences"] = np.asarray([item for items in sequences for item in items], dtype=np.int64)
    out["sequence_offsets"] = np.cumsum([0] + [len(items) for items in sequences]).astype(np.int64)

    npz, digest = save_arrays(out_dir, "sasrec_kang205_train", out)
    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "venv-tf/bin/python workflow/scripts/official/sasrec_kang205_train.py SASRec",
        "framework": f"tensorflow {tf2.__version__} (tf.compat.v1, v2 behaviour disabled)",
        "numpy_version": np.__version__,
        "seed": {"numpy": SEED, "sample_function SEED": SEED, "tf.set_random_seed": SEED},
        "shims": [
            "sys.modules['tensorflow'] = tf.compat.v1 (after tf.compat.v1.disable_v2_behavior())",
            "tensorflow.contrib.layers.l2_regularizer(0.0) = a function adding no loss (TF 1's for scale 0)",
            "util.py (Python 2) not imported: its data_partition replayed",
        ],
        "data": f"{USERS} users of 6-12 items over {ITEMS} items (numpy default_rng({SEED})), stored as "
        "sequences/sequence_offsets (each user's whole sequence; data_partition: last two are valid, test)",
        "settings": {
            "hidden_units": HIDDEN,
            "num_blocks": BLOCKS,
            "num_heads": HEADS,
            "maxlen": MAXLEN,
            "dropout_rate": 0.5,
            "l2_emb": 0.0,
            "batch_size": BATCH,
            "is_training": False,
        },
        "sizes": {"usernum": int(usernum), "itemnum": int(itemnum)},
        "parameter_names": names,
        "losses": {"total": float(loss)},
        "official_lines": OFFICIAL_LINES,
        "mode": "is_training False (dropout off); float32 on CPU, one thread",
        "shapes": {key: list(value.shape) for key, value in out.items()},
    }
    save_record(out_dir, "sasrec_kang205_train", record)
    print(json.dumps({"loss": float(loss), "npz_bytes": os.path.getsize(npz), "sha256": digest}, indent=1))


if __name__ == "__main__":
    main()

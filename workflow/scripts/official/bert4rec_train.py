"""Maintainer command: the OFFICIAL BERT4Rec (FeiSun/BERT4Rec, TensorFlow 1) on a tiny data set: its
seeded initialisation, one batch of cloze-masked training sequences, the masked-item loss, the
gradient of every variable (tf.gradients) and the evaluation logits of the last-item-masked test
sequences, written as the fixture tests/data/official/bert4rec_train.{npz,json} that
tests/test_official_bert4rec.py compares ours against (docs/OFFICIAL.md).

    git clone https://github.com/FeiSun/BERT4Rec
    git -C BERT4Rec checkout 615eaf2004abecda487a38d5b0c72f3dcfcae5b3
    python3 -m venv venv-tf && venv-tf/bin/pip install tensorflow-cpu tf-keras==2.21.0
    TF_USE_LEGACY_KERAS=1 venv-tf/bin/python workflow/scripts/official/bert4rec_train.py BERT4Rec

(from the repository root; tested with tensorflow-cpu 2.21.0, tf-keras 2.21.0, Python 3.11; no torch).

What runs of the official code: modeling.py (BertModel, layer_norm, gelu, initialisers), run.py's
get_masked_lm_output (the loss and log-probabilities) and vocab.py's FreqVocab (the item ids), all
imported from the checkout; the statements of run.py's model_fn (run.py:237-273) are replayed with
is_training False (dropout off) because model_fn itself returns a tf.estimator.EstimatorSpec and
tf.estimator is gone from TensorFlow 2.16 on. gen_data_fin.py (the data and mask generator) cannot
be imported by Python 3 (`print version_id`, gen_data_fin.py:512, a Python 2 statement), so its
cloze masks are drawn here once by its rule (create_masked_lm_predictions, gen_data_fin.py:416-468
with mask_prob 1.0: round(len x masked_lm_prob) positions, at least 1, at most
max_predictions_per_seq, all replaced by [MASK]) and stored.

Shims, here, not in the checkout: (1) `import tensorflow` in the official modules gets
tf.compat.v1 (v2 behaviour disabled); tf.compat.v1.layers needs the legacy Keras (tf-keras,
TF_USE_LEGACY_KERAS=1); (2) tf.contrib.layers.layer_norm (gone in TF 2) is written out as contrib's
was: variables LayerNorm/beta (zeros) and LayerNorm/gamma (ones) over the last axis,
tf.nn.moments and tf.nn.batch_normalization with variance_epsilon 1e-12.

Data: the first 30 users of tests/data/benchmark/Beauty.txt, items renumbered from 1 by first
appearance (the ids ours uses); the official ids are FreqVocab's (items by frequency from 1, then
the three special tokens in set order, made fixed by PYTHONHASHSEED=0, which the script sets by
re-running itself; vocab_size items + 4). The settings are bert_train/bert_config_beauty_64.json and
run_beauty.sh's (masked_lm_prob 0.6, max_predictions_per_seq 30, mask_prob 1.0) with max_seq_length
10, hidden_size 32 and intermediate_size 128 (tiny). The batch: the first 6 users with at least
max_seq_length + 3 items, each one training window (the last max_seq_length items of s_1..s_{n-2},
no padding: the official code right-pads, ours left-pads, see docs/OFFICIAL.md). The test rows: the
last max_seq_length - 1 of those items followed by [MASK] (gen_data_fin.py:396-413).

One departure is switched off: the official vocabulary has two rows no sequence holds, the special
tokens [pad] (padding is id 0, not [pad]'s id) and [NO_USE], and its softmax runs over them too; ours
has only padding, the items and [MASK]. After the seeded initialisation their output_bias is set to
-1e4, so their softmax share is 0 in float32 (the stored weight/cls/predictions/output_bias has it).
"""

import argparse
import json
import os
import random
import sys
import types

import numpy as np
from fixture import save_arrays, save_record, sha256
from tf1 import tensorflow_v1

REPOSITORY = "github.com/FeiSun/BERT4Rec"
COMMIT = "615eaf2004abecda487a38d5b0c72f3dcfcae5b3"
SEED = 12345  # gen_data_fin.py:21 random_seed
MAX_LEN = 10
USERS = 6
DATA_USERS = 30  # the vocabulary: the first 30 users' items
TINY = {"hidden_size": 32, "intermediate_size": 128}  # the Beauty config's 64 / 256 halved: a fixture < 300 KB
UNUSED_BIAS = -1e4  # the output bias of the two special tokens ours lacks (see the docstring)
MASKED_LM_PROB, MAX_PREDICTIONS = 0.6, 30  # run_beauty.sh
OFFICIAL_LINES = {
    "loss": "run.py:360-405 get_masked_lm_output (denominator run.py:402): dense+gelu, layer_norm, "
    "tied embedding + output_bias, log_softmax, "
    "sum(label_weights * -log p) / (sum(label_weights) + 1e-5)",
    "model": "run.py:237-273 model_fn (BertModel, token_type_ids None); modeling.py:94-209 BertModel",
    "encoder": "modeling.py:754-900 transformer_model (post-LN, gelu modeling.py:257-270, -10000 mask modeling.py:712)",
    "embeddings": "modeling.py:376-519 embedding_lookup, embedding_postprocessor "
    "(word + token type 0 + position, layer_norm_and_dropout)",
    "masks": "gen_data_fin.py:416-468 create_masked_lm_predictions (drawn here by its rule, see the docstring)",
    "scores": "run.py:384-385 logits = matmul(transform, embeddings^T) + output_bias (cls/predictions/BiasAdd) "
    "of the [MASK] appended after the history (gen_data_fin.py:396-413, force_last)",
    "vocab": "vocab.py:12-74 FreqVocab; get_vocab_size (vocab.py:73-74) = items + 3 special tokens + 1",
}


def contrib(v1):
    def layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
        """tf.contrib.layers.layer_norm as contrib wrote it (last axis; eps 1e-12)."""
        assert begin_norm_axis == -1 and begin_params_axis == -1
        with v1.variable_scope(scope, default_name="LayerNorm"):
            shape = inputs.get_shape()[-1:]
            beta = v1.get_variable("beta", shape=shape, initializer=v1.zeros_initializer())
            gamma = v1.get_variable("gamma", shape=shape, initializer=v1.ones_initializer())
            mean, variance = v1.nn.moments(inputs, [inputs.get_shape().ndims - 1], keep_dims=True)
            return v1.nn.batch_normalization(inputs, mean, variance, beta, gamma, variance_epsilon=1e-12)

    return {"layers": types.SimpleNamespace(layer_norm=layer_norm)}


def tiny_data(sequence_file):
    sequences, items = [], {}
    with open(sequence_file) as handle:
        for line in list(handle)[:DATA_USERS]:
            raw = [int(token) for token in line.split()[1:]]
            sequences.append([items.setdefault(item, len(items) + 1) for item in raw])
    return sequences


def masked(tokens, rng, vocab_items):
    """create_masked_lm_predictions' rule with mask_prob 1.0 (every chosen position becomes [MASK])."""
    candidates = [index for index, token in enumerate(tokens) if token in vocab_items]
    rng.shuffle(candidates)
    count = min(MAX_PREDICTIONS, max(1, int(round(len(tokens) * MASKED_LM_PROB))))
    positions = sorted(candidates[:count])
    output = list(tokens)
    for index in positions:
        output[index] = "[MASK]"
    return output, positions, [tokens[index] for index in positions]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout")
    parser.add_argument("--sequences", default="tests/data/benchmark/Beauty.txt")
    parser.add_argument("--out-dir", default="tests/data/official")
    cli = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":  # FreqVocab numbers its special tokens in set order
        os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | {"PYTHONHASHSEED": "0"})
    checkout = os.path.abspath(cli.checkout)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    tf2, tf = tensorflow_v1(contrib)
    sys.path.insert(0, checkout)
    import modeling  # official
    import run  # official (defines flags and get_masked_lm_output)
    from vocab import FreqVocab  # official

    sequences = tiny_data(cli.sequences)
    # the official vocabulary over every user's whole sequence (gen_data_fin.py:549-560)
    vocab = FreqVocab({f"user_{u}": [f"item_{i}" for i in s] for u, s in enumerate(sequences)})
    vocab_size = vocab.get_vocab_size()
    chosen = [u for u, s in enumerate(sequences) if len(s) >= MAX_LEN + 3][:USERS]
    windows = [[f"item_{i}" for i in sequences[u][:-2][-MAX_LEN:]] for u in chosen]
    rng = random.Random(SEED)
    vocab_items = vocab.get_items()
    rows = [masked(tokens, rng, vocab_items) for tokens in windows]

    def padded(values, width, fill=0):
        return list(values) + [fill] * (width - len(values))

    input_ids = np.array([vocab.convert_tokens_to_ids(tokens) for tokens, _, _ in rows], dtype=np.int32)
    positions = np.array([padded(p, MAX_PREDICTIONS) for _, p, _ in rows], dtype=np.int32)
    labels = np.array([padded(vocab.convert_tokens_to_ids(lab), MAX_PREDICTIONS) for _, _, lab in rows], np.int32)
    weights = np.array([padded([1.0] * len(p), MAX_PREDICTIONS, 0.0) for _, p, _ in rows], dtype=np.float32)
    test_ids = np.array(
        [vocab.convert_tokens_to_ids([*tokens[1:], "[MASK]"]) for tokens in windows], dtype=np.int32
    )  # the last MAX_LEN - 1 items and [MASK] (force_last)

    with open(os.path.join(checkout, "bert_train", "bert_config_beauty_64.json")) as handle:
        config_json = json.load(handle)
    config_json |= {"vocab_size": vocab_size, "max_position_embeddings": MAX_LEN} | TINY
    config = modeling.BertConfig.from_dict(config_json)

    tf.set_random_seed(SEED)
    ids_in = tf.placeholder(tf.int32, (None, MAX_LEN))
    mask_in = tf.placeholder(tf.int32, (None, MAX_LEN))
    positions_in = tf.placeholder(tf.int32, (None, MAX_PREDICTIONS))
    labels_in = tf.placeholder(tf.int32, (None, MAX_PREDICTIONS))
    weights_in = tf.placeholder(tf.float32, (None, MAX_PREDICTIONS))
    # run.py:254-270, is_training False (dropout off), use_one_hot_embeddings False (FLAGS.use_tpu)
    model = modeling.BertModel(
        config=config,
        is_training=False,
        input_ids=ids_in,
        input_mask=mask_in,
        token_type_ids=None,
        use_one_hot_embeddings=False,
    )
    loss, _, log_probs = run.get_masked_lm_output(
        config, model.get_sequence_output(), model.get_embedding_table(), positions_in, labels_in, weights_in
    )
    logits = tf.get_default_graph().get_tensor_by_name("cls/predictions/BiasAdd:0")
    variables = tf.trainable_variables()
    gradients = [tf.convert_to_tensor(g) for g in tf.gradients(loss, variables)]
    sess = tf.Session(config=tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))
    sess.run(tf.global_variables_initializer())
    # the departure switched off: the official softmax also runs over [pad] and [NO_USE], rows ours lacks
    unused = vocab.convert_tokens_to_ids(["[pad]", "[NO_USE]"])
    (bias,) = [v for v in variables if v.name == "cls/predictions/output_bias:0"]
    sess.run(bias.assign(tf.tensor_scatter_nd_update(bias, [[i] for i in unused], [UNUSED_BIAS] * len(unused))))
    values = sess.run({v.name.removesuffix(":0"): v for v in variables})

    feed = {
        ids_in: input_ids,
        mask_in: (input_ids > 0).astype(np.int32),
        positions_in: positions,
        labels_in: labels,
        weights_in: weights,
    }
    loss_value, grads = sess.run([loss, gradients], feed_dict=feed)
    last = np.full((len(test_ids), MAX_PREDICTIONS), 0, dtype=np.int32)
    last[:, 0] = MAX_LEN - 1
    test_feed = {
        ids_in: test_ids,
        mask_in: np.ones_like(test_ids),
        positions_in: last,
        labels_in: np.zeros_like(last),
        weights_in: np.zeros(last.shape, np.float32),
    }
    scores = sess.run(logits, feed_dict=test_feed).reshape(len(test_ids), MAX_PREDICTIONS, -1)[:, 0]

    out = {f"weight/{name}": value.astype(np.float32) for name, value in values.items()}
    for variable, gradient in zip(variables, grads, strict=True):
        out[f"grad/{variable.name.removesuffix(':0')}"] = gradient.astype(np.float32)
    out |= {
        "input_ids": input_ids.astype(np.int64),
        "masked_lm_positions": positions.astype(np.int64),
        "masked_lm_ids": labels.astype(np.int64),
        "masked_lm_weights": weights,
        "test_input_ids": test_ids.astype(np.int64),
        "scores": scores.astype(np.float32),
        "loss/masked_lm_loss": np.float64(loss_value),
        # official id of each of our ids 0 (padding), 1..n (items), n + 1 (mask)
        "official_ids": np.array(
            [0]
            + vocab.convert_tokens_to_ids([f"item_{i}" for i in range(1, vocab.get_item_count() + 1)])
            + vocab.convert_tokens_to_ids(["[MASK]"]),
            dtype=np.int64,
        ),
        "unused_official_ids": np.array(vocab.convert_tokens_to_ids(["[pad]", "[NO_USE]"]), dtype=np.int64),
    }
    npz, digest = save_arrays(cli.out_dir, "bert4rec_train", out)
    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "TF_USE_LEGACY_KERAS=1 venv-tf/bin/python workflow/scripts/official/bert4rec_train.py BERT4Rec",
        "framework": f"tensorflow {tf2.__version__} (tf.compat.v1, v2 behaviour disabled; tf-keras layers)",
        "numpy_version": np.__version__,
        "seed": {"tf.set_random_seed": SEED, "random.Random (masks)": SEED, "PYTHONHASHSEED": 0},
        "shims": [
            "sys.modules['tensorflow'] = tf.compat.v1 (after disable_v2_behavior); TF_USE_LEGACY_KERAS=1 (tf-keras)",
            "tf.contrib.layers.layer_norm written out (LayerNorm/beta, LayerNorm/gamma, moments, eps 1e-12)",
        ],
        "departure_switched_off": (
            "output_bias of [pad] and [NO_USE] (rows no sequence holds; ours has no such rows) set to -1e4 after "
            "the seeded initialisation, so the official softmax gives them 0"
        ),
        "not_run": (
            "gen_data_fin.py (Python 2: `print version_id` at gen_data_fin.py:515 is a SyntaxError in Python 3): "
            "its masking rule is applied here; run.py's model_fn (returns tf.estimator.EstimatorSpec; tf.estimator "
            "was removed in TensorFlow 2.16): its statements are replayed"
        ),
        "data": f"{os.path.basename(cli.sequences)} (sha256 {sha256(cli.sequences)[:16]}), items renumbered from 1",
        "users": chosen,
        "settings": config_json
        | {"max_seq_length": MAX_LEN, "masked_lm_prob": MASKED_LM_PROB, "max_predictions_per_seq": MAX_PREDICTIONS},
        "special_token_ids": {
            token: vocab.convert_tokens_to_ids([token])[0] for token in ("[pad]", "[MASK]", "[NO_USE]")
        },
        "losses": {"masked_lm_loss": float(loss_value)},
        "official_lines": OFFICIAL_LINES,
        "mode": "is_training False (every dropout off); float32 on CPU, one thread",
        "shapes": {key: list(value.shape) for key, value in out.items()},
    }
    save_record(cli.out_dir, "bert4rec_train", record)
    print(json.dumps({"loss": float(loss_value), "npz_bytes": os.path.getsize(npz), "sha256": digest}))


if __name__ == "__main__":
    main()

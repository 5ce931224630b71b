"""Maintainer command: the OFFICIAL CL4SRec the paper's Table 12 names (HKUDS/SSLRec,
models/sequential/cl4srec.py) on a tiny batch: its seeded initialisation, its own two augmented views
of the batch (`_cl4srec_aug`, recorded), the next-item cross-entropy, the weighted InfoNCE and their
total, the gradient of every parameter and `full_predict`'s scores; then its augmentations on AUG_ROWS
more rows with every Python `random` draw recorded, and its training examples (`_seq_aug` and
SequentialDataset's padding) of EXAMPLE_USERS users; written as the fixture
tests/data/official/cl4srec_sslrec_train.{npz,json} that tests/test_official_cl4srec_sslrec.py compares
ours (`architecture: sslrec`) against (docs/OFFICIAL.md).

    git clone https://github.com/HKUDS/SSLRec
    git -C SSLRec checkout 7597c31ce3f78c7497918d886b90df6d4d02cad5
    python workflow/scripts/official/cl4srec_sslrec_train.py SSLRec

(run from the repository root with this project's environment: torch, numpy, pyyaml). Shims, made here
and not in the checkout: `dgl` and `dgl.function` are empty modules (models/model_utils.py imports
them for its graph layers, which CL4SRec does not use; DGL 2.1 from PyPI fails to import on
`torchdata.datapipes`) and `sklearn.metrics.pairwise` holds a None `cosine_similarity` (imported by
datasets_sequential.py for DCRec's graphs, unused here); config/configurator.py parses sys.argv and
reads ./config/modelconf when imported, so sys.argv is set and the working directory is the checkout
while it is imported.

The batch: 8 left-padded rows of 2 to 7 items (items 1..ITEMS, numpy seed SEED; shorter than max_len:
the official `item_reorder` raises a ValueError on a row of exactly max_len items) and a target each,
as SSLRec's sequential dataset pads them. Settings: cl4srec.yml's (2 layers, 2 heads, lmd 0.1, tau 1)
but for embedding_size EMB, max_seq_len MAXLEN, item_num ITEMS and batch_size BATCH. Seeds: torch,
numpy and Python's random SEED (the augmentations draw from Python's random). Eval mode: dropout off.

The augmentation rows: AUG_ROWS left-padded rows of 1 to AUG_WIDTH items, each augmented alone; a call
that raises (the ValueError of `item_reorder` on a full row) is left out and the row tried again with the
next draws; the draws of the call kept are written (ops, starts from the row's end, masked columns,
the shuffle's offsets), with the two views; and one full row with the reorder's last start forced,
to record the ValueError. The example users: EXAMPLE_USERS sequences of 4 to 12 items; the official
train.tsv row of each is (s_1..s_{n-3}, s_{n-2}) under our leave-one-out split.
"""

import argparse
import os
import random
import sys
import types

import numpy as np
import torch
from fixture import save_arrays, save_record

REPOSITORY = "github.com/HKUDS/SSLRec"
COMMIT = "7597c31ce3f78c7497918d886b90df6d4d02cad5"
SEED = 5
ITEMS, EMB, MAXLEN, BATCH = 30, 16, 8, 8
AUG_ROWS, AUG_WIDTH = 160, 12
EXAMPLE_USERS = 12
OFFICIAL_LINES = {
    "model": "models/sequential/cl4srec.py:30-34 (TransformerEmbedding, TransformerLayer x n_layers), 45-53 "
    "(N(0, 0.02) init), 165-172 (key-padding mask, last position)",
    "layers": "models/model_utils.py:180-277: MultiHeadAttention (-1e9 on padded keys), PositionwiseFeedForward "
    "(GELU), ResidualConnection x + dropout(sublayer(norm(x))), TransformerLayer's output dropout, "
    "TransformerEmbedding (dropout 0.1)",
    "next_item": "cl4srec.py:175-181: CrossEntropyLoss(h @ token_emb.weight[:item_num + 1].T, last item)",
    "instance_cl": "cl4srec.py:183-188, 135-164: lmd * info_nce(h(view 1), h(view 2), tau): dot products, "
    "the partner positive, the other 2B-2 rows negatives",
    "augmentations": "cl4srec.py:55-133 _cl4srec_aug (recorded here, handed to ours; its draws recorded too)",
    "examples": "data_utils/data_handler_sequential.py:49-59 _seq_aug (range(1, len(seq) - 1), then the whole "
    "row), datasets_sequential.py:160-166 _pad_seq (the last max_seq_len items, zeros at the head)",
    "scores": "cl4srec.py:197-202 full_predict",
}


def tiny_batch():
    generator = np.random.default_rng(SEED)
    rows = np.zeros((BATCH, MAXLEN), dtype=np.int64)
    for row in range(BATCH):
        length = int(generator.integers(2, MAXLEN))
        rows[row, MAXLEN - length :] = 1 + generator.choice(ITEMS, length)
    return rows, 1 + generator.choice(ITEMS, BATCH).astype(np.int64)


def official_model(checkout):
    dgl = types.ModuleType("dgl")
    dgl.function = types.ModuleType("dgl.function")
    sys.modules["dgl"], sys.modules["dgl.function"] = dgl, dgl.function
    for name in ("sklearn", "sklearn.metrics", "sklearn.metrics.pairwise"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["sklearn.metrics.pairwise"].cosine_similarity = None
    here = os.getcwd()
    os.chdir(checkout)
    sys.path.insert(0, checkout)
    sys.argv = ["main.py", "--model", "cl4srec", "--device", "cpu"]
    from config.configurator import configs

    os.chdir(here)
    configs["data"].update({"item_num": ITEMS, "user_num": BATCH})
    configs["model"].update({"embedding_size": EMB, "max_seq_len": MAXLEN})
    configs["train"]["batch_size"] = BATCH
    from models.sequential.cl4srec import CL4SRec

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    random.seed(SEED)
    return CL4SRec(None), configs


class Recorder:
    """Python's `random` as cl4srec.py calls it, every result kept."""

    def __init__(self):
        self.calls = []

    def sample(self, population, k):
        self.calls.append(("sample", random.sample(population, k)))
        return self.calls[-1][1]

    def randint(self, low, high):
        self.calls.append(("randint", random.randint(low, high)))
        return self.calls[-1][1]

    def shuffle(self, values):
        random.shuffle(values)
        self.calls.append(("shuffle", list(values)))


def augmentation_draws(model):
    """Each row augmented alone with its draws recorded: ops, starts, masked columns, shuffle offsets."""
    import models.sequential.cl4srec as official_module

    recorder = Recorder()
    official_module.random = recorder
    generator = np.random.default_rng(SEED + 1)
    out = {key: [] for key in ("rows", "ops", "starts", "masked", "order", "one", "two")}
    retried = 0
    while len(out["rows"]) < AUG_ROWS:
        length = int(generator.integers(1, AUG_WIDTH + 1))
        row = np.zeros(AUG_WIDTH, dtype=np.int64)
        row[AUG_WIDTH - length :] = 1 + generator.choice(ITEMS, length)
        while True:
            recorder.calls = []
            try:
                one, two = model._cl4srec_aug(torch.from_numpy(row[None]))
                break
            except ValueError:
                retried += 1
        ops, starts = [-1, -1], [0, 0]
        masked, order = np.zeros((2, AUG_WIDTH), dtype=bool), np.tile(np.arange(AUG_WIDTH), (2, 1))
        calls = list(recorder.calls)
        if length > 1:
            ops = list(calls.pop(0)[1])
            for view, op in enumerate(ops):
                kind, value = calls.pop(0)
                assert kind == ("sample" if op == 1 else "randint"), (op, kind)
                if op == 1:  # mask: positions counted from the end
                    masked[view, [AUG_WIDTH - 1 - index for index in value]] = True
                else:
                    starts[view] = value
                if op == 2:
                    shuffled = calls.pop(0)[1]
                    order[view, : len(shuffled)] = [index - value for index in shuffled]
        assert not calls, calls
        for key, value in zip(out, (row, ops, starts, masked, order, one[0].numpy(), two[0].numpy()), strict=True):
            out[key].append(np.asarray(value))
    arrays = {f"augment/{key}": np.stack(value) for key, value in out.items()}
    # a full row whose reorder draws the last start: the official line raises
    length = AUG_WIDTH
    draws = iter([[2, 0], length - length * 6 // 10])
    official_module.random = types.SimpleNamespace(
        sample=lambda population, k: next(draws), randint=lambda low, high: next(draws), shuffle=lambda values: None
    )
    try:
        model._cl4srec_aug(torch.arange(1, length + 1)[None])
        raised = "nothing raised"
    except ValueError as error:
        raised = f"ValueError: {error}"
    official_module.random = random
    return arrays, {"retried_after_value_error": retried, "full_row_last_reorder_start": raised}


def training_examples():
    """The official training examples of EXAMPLE_USERS users, padded as its dataset pads them."""
    from data_utils.data_handler_sequential import DataHandlerSequential
    from data_utils.datasets_sequential import SequentialDataset

    generator = np.random.default_rng(SEED + 2)
    sequences = [1 + generator.choice(ITEMS, int(generator.integers(4, 13))) for _ in range(EXAMPLE_USERS)]
    train = {"uid": [], "item_seq": [], "item_id": []}
    for user, sequence in enumerate(sequences):
        train["uid"].append(user + 1)
        train["item_seq"].append([int(item) for item in sequence[:-3]])
        train["item_id"].append(int(sequence[-3]))
    examples = SequentialDataset(train, user_seqs_aug=DataHandlerSequential._seq_aug(None, train))
    rows = [examples[index] for index in range(len(examples))]
    return {
        "examples/sequences": np.concatenate(sequences).astype(np.int64),
        "examples/lengths": np.array([len(sequence) for sequence in sequences], dtype=np.int64),
        "examples/users": np.array([row[0] for row in rows], dtype=np.int64),
        "examples/inputs": np.stack([row[1].numpy() for row in rows]).astype(np.int64),
        "examples/targets": np.array([row[2] for row in rows], dtype=np.int64),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout")
    parser.add_argument("--out-dir", default="tests/data/official")
    cli = parser.parse_args()
    torch.set_num_threads(1)
    model, configs = official_model(os.path.abspath(cli.checkout))
    weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
    views = []
    augment = model._cl4srec_aug
    model._cl4srec_aug = lambda seqs: views.append(augment(seqs)) or views[-1]
    seqs, last_items = tiny_batch()
    batch = [torch.arange(BATCH), torch.from_numpy(seqs), torch.from_numpy(last_items)]
    model.eval()
    loss, parts = model.cal_loss(batch)
    loss.backward()
    with torch.no_grad():
        scores = model.full_predict(batch)

    out = {f"weight/{name}": value.numpy().astype(np.float32) for name, value in weights.items()}
    for name, parameter in model.named_parameters():
        out[f"grad/{name}"] = parameter.grad.numpy().astype(np.float32)
    out["batch/seqs"], out["batch/last_items"] = seqs, last_items
    out["views/one"], out["views/two"] = (view.numpy().astype(np.int64) for view in views[0])
    out["loss/rec_loss"], out["loss/cl_loss"] = np.float64(parts["rec_loss"]), np.float64(parts["cl_loss"])
    out["loss/total"] = np.float64(loss.item())
    out["scores"] = scores.numpy().astype(np.float32)
    augmentations, raised = augmentation_draws(model)
    out |= augmentations | training_examples()
    npz, digest = save_arrays(cli.out_dir, "cl4srec_sslrec_train", out)
    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "python workflow/scripts/official/cl4srec_sslrec_train.py SSLRec",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "seed": {"torch.manual_seed": SEED, "numpy": SEED, "random": SEED, "batch: default_rng": SEED},
        "shims": [
            "sys.modules['dgl'], ['dgl.function'] = empty modules (imported by model_utils.py, unused by CL4SRec)",
            "sys.argv = main.py --model cl4srec --device cpu, working directory the checkout while configurator "
            "is imported",
            "sys.modules['sklearn.metrics.pairwise'].cosine_similarity = None (imported by datasets_sequential.py "
            "for DCRec's graphs, unused by CL4SRec)",
        ],
        "settings": {"model": configs["model"], "item_num": ITEMS, "batch_size": BATCH},
        "losses": {"rec_loss": parts["rec_loss"], "cl_loss (lmd x info_nce)": parts["cl_loss"], "total": loss.item()},
        "official_lines": OFFICIAL_LINES,
        "mode": "eval (every dropout off); float32 on CPU, one thread",
        "augmentations": {"rows": AUG_ROWS, "width": AUG_WIDTH, "seed": SEED + 1, **raised},
        "examples": {"users": EXAMPLE_USERS, "seed": SEED + 2, "max_seq_len": MAXLEN},
        "npz_sha256": digest,
        "shapes": {key: list(value.shape) for key, value in out.items()},
    }
    save_record(cli.out_dir, "cl4srec_sslrec_train", record)
    print(record["losses"], os.path.getsize(npz), "bytes, sha256", digest)


if __name__ == "__main__":
    main()

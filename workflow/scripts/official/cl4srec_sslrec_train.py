"""Maintainer command: the OFFICIAL CL4SRec the paper's Table 12 names (HKUDS/SSLRec,
models/sequential/cl4srec.py) on a tiny batch: its seeded initialisation, its own two augmented views
of the batch (`_cl4srec_aug`, recorded), the next-item cross-entropy, the weighted InfoNCE and their
total, the gradient of every parameter and `full_predict`'s scores, written as the fixture
tests/data/official/cl4srec_sslrec_train.{npz,json} that tests/test_official_cl4srec_sslrec.py compares
ours (`architecture: sslrec`) against (docs/OFFICIAL.md).

    git clone https://github.com/HKUDS/SSLRec
    git -C SSLRec checkout 7597c31ce3f78c7497918d886b90df6d4d02cad5
    python workflow/scripts/official/cl4srec_sslrec_train.py SSLRec

(run from the repository root with this project's environment: torch, numpy, pyyaml). Shims, made here
and not in the checkout: `dgl` and `dgl.function` are empty modules (models/model_utils.py imports
them for its graph layers, which CL4SRec does not use; DGL 2.1 from PyPI fails to import on
`torchdata.datapipes`); config/configurator.py parses sys.argv and reads ./config/modelconf when
imported, so sys.argv is set and the working directory is the checkout while it is imported.

The batch: 8 left-padded rows of 2 to 7 items (items 1..ITEMS, numpy seed SEED; shorter than max_len:
the official `item_reorder` raises a ValueError on a row of exactly max_len items) and a target each,
as SSLRec's sequential dataset pads them. Settings: cl4srec.yml's (2 layers, 2 heads, lmd 0.1, tau 1)
but for embedding_size EMB, max_seq_len MAXLEN, item_num ITEMS and batch_size BATCH. Seeds: torch,
numpy and Python's random SEED (the augmentations draw from Python's random). Eval mode: dropout off.
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
OFFICIAL_LINES = {
    "model": "models/sequential/cl4srec.py:30-34 (TransformerEmbedding, TransformerLayer x n_layers), 45-53 "
    "(N(0, 0.02) init), 165-172 (key-padding mask, last position)",
    "layers": "models/model_utils.py:180-277: MultiHeadAttention (-1e9 on padded keys), PositionwiseFeedForward "
    "(GELU), ResidualConnection x + dropout(sublayer(norm(x))), TransformerLayer's output dropout, "
    "TransformerEmbedding (dropout 0.1)",
    "next_item": "cl4srec.py:175-181: CrossEntropyLoss(h @ token_emb.weight[:item_num + 1].T, last item)",
    "instance_cl": "cl4srec.py:183-188, 135-164: lmd * info_nce(h(view 1), h(view 2), tau): dot products, "
    "the partner positive, the other 2B-2 rows negatives",
    "augmentations": "cl4srec.py:55-133 _cl4srec_aug (recorded here, handed to ours)",
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
        ],
        "settings": {"model": configs["model"], "item_num": ITEMS, "batch_size": BATCH},
        "losses": {"rec_loss": parts["rec_loss"], "cl_loss (lmd x info_nce)": parts["cl_loss"], "total": loss.item()},
        "official_lines": OFFICIAL_LINES,
        "mode": "eval (every dropout off); float32 on CPU, one thread",
        "npz_sha256": digest,
        "shapes": {key: list(value.shape) for key, value in out.items()},
    }
    save_record(cli.out_dir, "cl4srec_sslrec_train", record)
    print(record["losses"], os.path.getsize(npz), "bytes, sha256", digest)


if __name__ == "__main__":
    main()

"""Maintainer command: the OFFICIAL S3-Rec code's four pre-training losses (AAP, MIP, MAP, SP), their
weighted total and every gradient, on the official pre-trained Beauty weights and one batch of its
own PretrainDataset, written as the fixture tests/data/official/s3rec_pretrain_beauty.{npz,json}
that tests/test_s3rec.py compares ours against (docs/OFFICIAL.md).

    git clone https://github.com/aHuiWang/CIKM2020-S3Rec
    git -C CIKM2020-S3Rec checkout 49a890dcb516c9ed3126564495234ea74d5cd566
    python workflow/scripts/official/s3rec_pretrain.py CIKM2020-S3Rec --data-dir DIR --weights FILE

DIR holds Beauty.txt and Beauty_item2attributes.json (resources/raw/beauty/ after the data stage);
FILE is reproduce/Beauty-epochs-150.pt of the checkout (or resources/raw/beauty/S3Rec-Beauty-epochs-150.pt).
The official modules are imported from the checkout (nothing of them is copied); run_pretrain.py's
argument defaults are replayed from its `parser.add_argument` calls (importing it would train).
The batch is run_pretrain.py's first, with 8 samples: set_seed(42), the model's random
initialisation (which draws from the generator) and the strict load of the weights, then a
RandomSampler over PretrainDataset. The sampler's permutation depends on the torch version, so the
batch itself is saved. Eval mode (dropout off); float32 (the official pretrain() casts to float).
"""

import argparse
import ast
import json
import os
import sys

import numpy as np
import torch
from fixture import save_arrays, save_record, sha256

STATE_SHA256 = "a196408d383719bccd1898b5f3f879bd2cdf6490ad9ee21ce0291cae97bd0508"
REPOSITORY = "github.com/aHuiWang/CIKM2020-S3Rec"
COMMIT = "49a890dcb516c9ed3126564495234ea74d5cd566"
BATCH_SIZE = 8
BATCH_NAMES = [
    "attributes",
    "masked_item_sequence",
    "pos_items",
    "neg_items",
    "masked_segment_sequence",
    "pos_segment",
    "neg_segment",
]
SPARSE_GRAD_PARAMS = ["item_embeddings.weight", "attribute_embeddings.weight"]

# Official file:line references (commit 49a890d).
OFFICIAL_LINES = {
    "aap_loss": "models.py:101-107 (score: associated_attribute_prediction models.py:29-39)",
    "mip_loss": "models.py:109-117 (score: masked_item_prediction models.py:42-51)",
    "map_loss": "models.py:119-123 (score: masked_attribute_prediction models.py:54-59)",
    "sp_loss": "models.py:125-160 (score: segment_prediction models.py:62-70)",
    "total": "trainers.py:165-168 (PretrainTrainer.pretrain joint_loss)",
    "criterion": "models.py:25 nn.BCELoss(reduction='none')",
    "batch": "datasets.py:8-117 PretrainDataset; run_pretrain.py:94-96 RandomSampler/DataLoader",
    "sizes": "run_pretrain.py:74-79; utils.py:153-167 get_user_seqs_long; utils.py:193-199 get_item2attribute_json",
}


def official_args(checkout):
    """Build the argparse parser from run_pretrain.py's own add_argument calls; parse no CLI."""
    with open(os.path.join(checkout, "run_pretrain.py")) as handle:
        src = handle.read()
    tree = ast.parse(src)
    parser = argparse.ArgumentParser()
    n = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            expr = ast.Expression(body=node)
            eval(compile(expr, "run_pretrain.py", "eval"), {"parser": parser})
            n += 1
    assert n > 20, n
    return parser.parse_args([])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkout")
    ap.add_argument("--data-dir", required=True, help="holds Beauty.txt and Beauty_item2attributes.json")
    ap.add_argument("--weights", required=True, help="the official reproduce/Beauty-epochs-150.pt")
    ap.add_argument("--out-dir", default="tests/data/official")
    cli = ap.parse_args()
    checkout = os.path.abspath(cli.checkout)

    torch.set_num_threads(1)
    sys.path.insert(0, checkout)
    from datasets import PretrainDataset  # official
    from models import S3RecModel  # official
    from torch.utils.data import DataLoader, RandomSampler
    from utils import get_item2attribute_json, get_user_seqs_long, set_seed  # official

    args = official_args(checkout)
    assert args.data_name == "Beauty"
    # as run_pretrain.py:65-79, with the data files read from --data-dir
    set_seed(args.seed)
    args.cuda_condition = False
    args.data_dir = os.path.join(os.path.abspath(cli.data_dir), "")
    args.data_file = args.data_dir + args.data_name + ".txt"
    item2attribute_file = args.data_dir + args.data_name + "_item2attributes.json"
    user_seq, max_item, long_sequence = get_user_seqs_long(args.data_file)
    item2attribute, attribute_size = get_item2attribute_json(item2attribute_file)
    args.item_size = max_item + 2
    args.mask_id = max_item + 1
    args.attribute_size = attribute_size + 1
    args.item2attribute = item2attribute

    model = S3RecModel(args=args)  # consumes torch RNG exactly as run_pretrain.py:89
    assert sha256(cli.weights) == STATE_SHA256, f"{cli.weights}: not the official Beauty-epochs-150.pt"
    state = torch.load(cli.weights, map_location="cpu")
    model.load_state_dict(state, strict=True)

    # run_pretrain.py:94-96 (epoch 0), batch size 8
    pretrain_dataset = PretrainDataset(args, user_seq, long_sequence)
    pretrain_sampler = RandomSampler(pretrain_dataset)
    seen = []
    orig_getitem = PretrainDataset.__getitem__

    class _Recording(torch.utils.data.Dataset):  # only records indices, delegates to official
        def __len__(self):
            return len(pretrain_dataset)

        def __getitem__(self, i):
            seen.append(int(i))
            return orig_getitem(pretrain_dataset, i)

    loader = DataLoader(_Recording(), sampler=pretrain_sampler, batch_size=BATCH_SIZE)
    batch = next(iter(loader))
    assert len(seen) == BATCH_SIZE
    attributes, masked_item_sequence, pos_items, neg_items, masked_segment_sequence, pos_segment, neg_segment = batch

    model.eval()  # dropout off (the official training loop uses model.train(), trainers.py:149)
    model.zero_grad()
    aap_loss, mip_loss, map_loss, sp_loss = model.pretrain(
        attributes, masked_item_sequence, pos_items, neg_items, masked_segment_sequence, pos_segment, neg_segment
    )
    # trainers.py:165-168, verbatim expression
    joint_loss = (
        args.aap_weight * aap_loss + args.mip_weight * mip_loss + args.map_weight * map_loss + args.sp_weight * sp_loss
    )
    joint_loss.backward()

    losses = {
        "aap_loss": aap_loss.item(),
        "mip_loss": mip_loss.item(),
        "map_loss": map_loss.item(),
        "sp_loss": sp_loss.item(),
        "total": joint_loss.item(),
    }
    for k, v in losses.items():
        assert np.isfinite(v), (k, v)

    out = {}
    for name, t in zip(BATCH_NAMES, batch, strict=True):
        out[name] = t.numpy().astype(np.int64)
    out["sample_indices"] = np.asarray(seen, dtype=np.int64)
    for k, v in losses.items():
        out[k] = np.float64(v)
    param_shapes = {}
    for name, p in model.named_parameters():
        param_shapes[name] = list(p.shape)
        g = p.grad
        if g is None:
            g = torch.zeros_like(p)
        g = g.detach().to(torch.float32)
        if name in SPARSE_GRAD_PARAMS:
            rows = torch.nonzero(g.abs().sum(dim=1) != 0).flatten()
            out["grad_rows/" + name] = rows.numpy().astype(np.int64)
            out["grad/" + name] = g[rows].numpy().astype(np.float32)
        else:
            out["grad/" + name] = g.numpy().astype(np.float32)

    npz_path, _ = save_arrays(cli.out_dir, "s3rec_pretrain_beauty", out)
    size = os.path.getsize(npz_path)
    assert size < 2 * 1024 * 1024, size

    meta = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "python " + " ".join(os.path.basename(arg) if os.path.isabs(arg) else arg for arg in sys.argv),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "seed": args.seed,
        "sampling": (
            "run_pretrain.py order: utils.set_seed(42); S3RecModel(args) random init "
            "(consumes torch RNG) then strict load of the released state dict; "
            "PretrainDataset(args, user_seq, long_sequence); RandomSampler (no generator); "
            "DataLoader(batch_size=8, num_workers=0); first batch. Indices depend on the "
            "torch version's RandomSampler; saved as sample_indices."
        ),
        "sample_indices": seen,
        "dataset_len": len(pretrain_dataset),
        "model_mode": "eval (dropout off); float32 forward/backward on CPU",
        "batch_shape": {n: list(t.shape) for n, t in zip(BATCH_NAMES, batch, strict=True)},
        "losses": losses,
        "loss_weights": {"aap": args.aap_weight, "mip": args.mip_weight, "map": args.map_weight, "sp": args.sp_weight},
        "official_lines": OFFICIAL_LINES,
        "args": {
            k: v for k, v in vars(args).items() if k not in ("item2attribute", "data_dir", "data_file", "output_dir")
        },
        "state_dict": "reproduce/Beauty-epochs-150.pt",
        "state_dict_sha256": STATE_SHA256,
        "data_files": {
            os.path.basename(args.data_file): sha256(args.data_file),
            os.path.basename(item2attribute_file): sha256(item2attribute_file),
        },
        "param_shapes": param_shapes,
        "npz_keys": sorted(out.keys()),
        "npz_bytes": size,
        "notes": (
            "grad/<name>: full float32 gradient of total, except for item_embeddings.weight "
            "and attribute_embeddings.weight, where only rows with a nonzero gradient are "
            "stored (grad_rows/<name> int64 indices, grad/<name> float32 [rows,64]). "
            "sample_indices: the PretrainDataset indices of the 8 samples. No float64 "
            "reference: the official pretrain() casts targets with .float(), so BCELoss "
            "fails on a double model without editing the official code."
        ),
    }
    save_record(cli.out_dir, "s3rec_pretrain_beauty", meta)
    print(json.dumps({"losses": losses, "indices": seen, "npz_bytes": size}, indent=1))


if __name__ == "__main__":
    main()

"""Maintainer command: the DSSRec re-implementation's pre-training losses (seq2item, seq2seq with its
confidence filter, their weighted total), the gradient of every parameter and the fine-tuning model's
full scores of an evaluation batch, on a seeded initialisation of a tiny model and a tiny synthetic
sequence set, written as the fixture tests/data/official/dssrec_pretrain.{npz,json} that
tests/test_official_dssrec.py compares ours against (src/elcrec/official/dssrec.py).

DSSRec has no official code; the paper (Table 12) cites the third-party re-implementation:

    git clone https://github.com/abis330/DSSRec
    git -C DSSRec checkout eb0ca62c7599e97ee006f344fd2a5438ba8a4408
    python workflow/scripts/official/dssrec_pretrain.py DSSRec

The modules of the checkout (models, datasets, trainers, utils) are imported from it (nothing of them
is copied). Its arguments are its own `utils.get_args()` defaults (the parser is run on a command
line of the tiny sizes below, so every other default is the re-implementation's). It reads MOOCCube
CSVs by default; here its dataset objects are built directly from SEQUENCES, a synthetic list of 8
users over the items 1..40 (pretrainer.py:36-49 with `get_user_seqs_long_csv` replaced by that list).
The order of pretrainer.py: set_seed(42), DSSRecModel(args) (its initialisation draws from the global
generator), PretrainDataset(args, user_seq, long_sequence), a RandomSampler and a DataLoader of
pre_batch_size 8, first batch. The re-implementation's windows of users longer than max_len include
empty ones (start 0 and 1 slice item_seq[i - 2 : i + max_len - 2], datasets.py:48-51), on which its
__getitem__ fails (torch.randint(1, -1)); the sampler runs over the windows of at least 3 items (indices
recorded), so that every sample takes the general split t in [1, len - 2]
(datasets.py:110-132). 10 such windows, batch 8: a full batch of pre_batch_size, as the confidence
filter's floor(lambda_ * pre_batch_size * num_intents) assumes (models.py:118).

Eval mode (dropout off), float32, CPU. The scores are FineTrainer's full ranking of the first batch
of the test FinetuneDataset (SequentialSampler, 8 users): finetune(input_ids)[:, -1, :] and
predict_full, before the training items are zeroed (trainers.py:308-314), same weights.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
from fixture import save_arrays, save_record

REPOSITORY = "github.com/abis330/DSSRec"
COMMIT = "eb0ca62c7599e97ee006f344fd2a5438ba8a4408"
NAME = "dssrec_pretrain"
BATCH_SIZE = 8
# the tiny sizes; every other argument is utils.get_args()'s default
TINY_ARGS = ["--hidden_size", "16", "--max_seq_length", "10", "--pre_batch_size", "8", "--batch_size", "8"]
TINY_ARGS += ["--no_cuda", "--data_name", "synthetic"]
LENGTHS = [22, 16, 12, 10, 7, 5, 8, 9]  # 3 + 1 + 1 + 1 + 1 + 1 + 1 + 1 windows of >= 3 items (max_len 10)
ITEMS = 40
SPARSE_GRAD_PARAMS = ["item_embeddings.weight"]

# official file:line (commit eb0ca62)
OFFICIAL_LINES = {
    "seq2item": "models.py:127-148 (DSSRecModel.__seq2itemloss), called at models.py:180",
    "seq2seq": "models.py:101-124 (DSSRecModel.__seq2seqloss; confidence filter models.py:118-122), models.py:182",
    "total": "trainers.py:214-215 (DSSPretrainer.pretrain joint_loss)",
    "pretrain": "models.py:150-184 (two encoder passes models.py:156-166, DSSEncoder models.py:175-178)",
    "intent_layer": "modules.py:174-290 (DSSEncoder: clustering 203-230, weighting 232-251, aggregation 253-277)",
    "encoder": "models.py:32-60 (embedding, -10000 mask), modules.py:59-171 (SelfAttention, PointWiseFeedForward)",
    "scores": "trainers.py:305-314 (FineTrainer.iteration full_sort: finetune [:, -1, :], predict_full 155-160)",
    "batch": "datasets.py:13-132 PretrainDataset (windows 38-51, split 110-132); pretrainer.py:84-86",
    "score_batch": "datasets.py:135-217 FinetuneDataset data_type='test'; finetuner.py:154-156",
    "sizes": "pretrainer.py:47-49 (item_size = max_item + 2, mask_id = max_item + 1)",
    "args": "utils.py:19-83 get_args",
}


def synthetic_sequences():
    """8 users over the items 1..ITEMS (each item once in the first 40 positions, ids contiguous, as
    the re-implementation's item_size = number of distinct items + 2 assumes)."""
    rng = np.random.RandomState(0)
    flat = np.concatenate([rng.permutation(ITEMS) + 1, rng.randint(1, ITEMS + 1, sum(LENGTHS) - ITEMS)])
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)])
    return [[int(item) for item in flat[offsets[u] : offsets[u + 1]]] for u in range(len(LENGTHS))]


def left_padded(rows, width):
    out = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        if row:
            out[index, width - len(row) :] = row
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkout")
    ap.add_argument("--out-dir", default="tests/data/official")
    cli = ap.parse_args()
    checkout = os.path.abspath(cli.checkout)

    torch.set_num_threads(1)
    sys.path.insert(0, checkout)
    from datasets import FinetuneDataset, PretrainDataset  # official
    from models import DSSRecModel  # official
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
    from trainers import FineTrainer  # official
    from utils import get_args, set_seed  # official

    argv, sys.argv = sys.argv, ["pretrainer.py", *TINY_ARGS]
    try:
        args = get_args()
    finally:
        sys.argv = argv
    assert args.loss_type == "DSS" and args.num_intents == 4 and args.lambda_ == 0.5

    # pretrainer.py:28-49, the data from SEQUENCES instead of the CSV
    user_seq = synthetic_sequences()
    long_sequence = [item for sequence in user_seq for item in sequence]
    set_seed(args.seed)
    args.cuda_condition = torch.cuda.is_available() and not args.no_cuda
    max_item = len(set(long_sequence))
    assert max_item == ITEMS == max(long_sequence)
    args.item_size = max_item + 2
    args.mask_id = max_item + 1

    model = DSSRecModel(args)  # pretrainer.py:62, draws from the global generator
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}

    # pretrainer.py:84-86 (epoch 0), over the windows __getitem__ can split
    dataset = PretrainDataset(args, user_seq, long_sequence)
    usable = [index for index, window in enumerate(dataset.part_sequence) if len(window) >= 3]
    seen = []

    class _Recording(torch.utils.data.Dataset):  # records the indices, delegates to the official dataset
        def __len__(self):
            return len(usable)

        def __getitem__(self, i):
            seen.append(usable[i])
            return dataset[usable[i]]

    windows = _Recording()
    loader = DataLoader(windows, sampler=RandomSampler(windows), batch_size=args.pre_batch_size)
    batch = next(iter(loader))
    inp_pos_items, label_pos_items, next_pos_item = batch
    assert len(seen) == BATCH_SIZE == args.pre_batch_size

    # one step of DSSPretrainer.pretrain (trainers.py:210-216), eval mode, no optimiser step
    model.eval()
    model.zero_grad()
    captured = {}
    kthvalue = torch.kthvalue

    def recording_kthvalue(values, k, *rest, **options):  # models.py:119: the per-(sequence, intent) losses
        captured["seq2seq_loss_k"], captured["k"] = values.detach().clone(), int(k)
        return kthvalue(values, k, *rest, **options)

    torch.kthvalue = recording_kthvalue
    try:
        seq2item_loss, seq2seq_loss = model.pretrain(inp_pos_items, label_pos_items, next_pos_item)
    finally:
        torch.kthvalue = kthvalue
    joint_loss = args.s2i_weight * seq2item_loss + args.s2s_weight * seq2seq_loss  # trainers.py:214-215
    joint_loss.backward()
    losses = {"seq2item": seq2item_loss.item(), "seq2seq": seq2seq_loss.item(), "total": joint_loss.item()}
    assert all(np.isfinite(value) for value in losses.values()), losses
    pair_losses = captured["seq2seq_loss_k"]
    threshold = torch.kthvalue(pair_losses, captured["k"])[0]
    kept = int((pair_losses <= threshold).sum())
    assert kept == captured["k"], "ties at the confidence threshold: our filter would keep fewer"

    out = {}
    for name, p in model.named_parameters():
        out["weight/" + name] = weights[name].numpy().astype(np.float32)
        grad = (p.grad if p.grad is not None else torch.zeros_like(p)).detach().to(torch.float32)
        if name in SPARSE_GRAD_PARAMS:
            rows = torch.nonzero(grad.abs().sum(dim=1) != 0).flatten()
            out["grad_rows/" + name] = rows.numpy().astype(np.int64)
            out["grad/" + name] = grad[rows].numpy()
        else:
            out["grad/" + name] = grad.numpy()
    gradients = {name: p.grad for name, p in model.named_parameters()}

    # the fine-tuning model's full scores (trainers.py:305-314) of the test batch, same weights
    trainer = FineTrainer(model, None, None, None, args)
    test_dataset = FinetuneDataset(args, user_seq, data_type="test")
    test_loader = DataLoader(test_dataset, sampler=SequentialSampler(test_dataset), batch_size=args.batch_size)
    user_ids, input_ids, _, _, _ = next(iter(test_loader))
    model.eval()
    with torch.no_grad():
        scores = trainer.predict_full(model.finetune(input_ids)[:, -1, :])
    assert all(torch.equal(p.grad, gradients[name]) for name, p in model.named_parameters())

    out["sequences"] = np.asarray(long_sequence, dtype=np.int64)
    out["sequence_offsets"] = np.concatenate([[0], np.cumsum([len(s) for s in user_seq])]).astype(np.int64)
    out["windows"] = left_padded(dataset.part_sequence, args.max_seq_length)
    out["window_lengths"] = np.asarray([len(w) for w in dataset.part_sequence], dtype=np.int64)
    out["window_indices"] = np.asarray(seen, dtype=np.int64)
    out["inp_pos_items"] = inp_pos_items.numpy().astype(np.int64)
    out["label_pos_items"] = label_pos_items.numpy().astype(np.int64)
    out["next_item"] = next_pos_item.numpy().astype(np.int64)
    for name, value in losses.items():
        out["loss/" + name] = np.float64(value)
    out["loss/seq2seq_k"] = pair_losses.numpy().astype(np.float32)
    out["score_user_ids"] = user_ids.numpy().astype(np.int64)
    out["score_input_ids"] = input_ids.numpy().astype(np.int64)
    out["scores"] = scores.numpy().astype(np.float32)

    npz_path, _ = save_arrays(cli.out_dir, NAME, out)
    size = os.path.getsize(npz_path)
    assert size < 256 * 1024, size

    settings = {
        key: value
        for key, value in vars(args).items()
        if key not in ("data_dir", "output_dir", "plot_dir", "gpu_id", "log_file", "data_file")
    }
    meta = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": "python " + " ".join(os.path.basename(arg) if os.path.isabs(arg) else arg for arg in sys.argv),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "seed": args.seed,
        "settings": settings,
        "official_arguments": TINY_ARGS,
        "data": (
            f"synthetic: {len(LENGTHS)} users of {LENGTHS} items over 1..{ITEMS} (numpy RandomState(0): a "
            "permutation of the items, then uniform draws); stored as sequences/sequence_offsets"
        ),
        "sampling": (
            "pretrainer.py order: utils.set_seed(42); DSSRecModel(args) (random init from the global "
            "generator); PretrainDataset(args, user_seq, long_sequence); RandomSampler over the windows of "
            ">= 3 items ( the re-implementation's empty windows of users longer than max_len would "
            "fail in __getitem__); DataLoader(batch_size=pre_batch_size=8); first batch. Split points t drawn "
            "in __getitem__ (torch.randint). Saved: window_indices, the batch itself."
        ),
        "window_indices": seen,
        "windows": len(dataset.part_sequence),
        "usable_windows": len(usable),
        "confidence_filter": {
            "k": captured["k"],
            "pairs": int(pair_losses.numel()),
            "kept": kept,
            "threshold": float(threshold),
            "ties": "none (kept == k)",
        },
        "model_mode": "eval (dropout off); float32 forward/backward on CPU; no optimiser step",
        "shapes": {key: list(value.shape) for key, value in out.items() if not key.startswith(("weight/", "grad"))},
        "losses": losses,
        "loss_weights": {"s2i_weight": args.s2i_weight, "s2s_weight": args.s2s_weight},
        "official_lines": OFFICIAL_LINES,
        "param_shapes": {name: list(p.shape) for name, p in model.named_parameters()},
        "npz_bytes": size,
        "notes": (
            "weight/<name>: the seeded initialisation; grad/<name>: the gradient of the total (joint_loss), "
            "item_embeddings.weight as its nonzero rows (grad_rows/<name>). loss/seq2seq_k: the B*K "
            "per-(sequence, intent) losses before the confidence filter (kthvalue's input, models.py:119). "
            "scores: predict_full before the training items are zeroed, [8, item_size]."
        ),
    }
    save_record(cli.out_dir, NAME, meta)
    print(json.dumps({"losses": losses, "window_indices": seen, "kept": kept, "npz_bytes": size}, indent=1))


if __name__ == "__main__":
    main()

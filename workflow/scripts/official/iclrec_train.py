#!/usr/bin/env python
"""Maintainer command: one training step of the OFFICIAL ICLRec code (salesforce/ICLRec, the code base
ELCRec is built on) for ICLRec, CL4SRec and SASRec as that code runs them, on a seeded tiny model,
written as the fixtures tests/data/official/{iclrec,cl4srec,sasrec}_train.{npz,json} that
tests/test_official_{iclrec,cl4srec,sasrec}.py compare ours against (docs/OFFICIAL.md).

    git clone https://github.com/salesforce/ICLRec
    git -C ICLRec checkout 2890e6c3ff6a22c6699fc19cb863b66786c1cde4
    OMP_NUM_THREADS=1 python workflow/scripts/official/iclrec_train.py ICLRec

(The checkout's large files, two of the released .pt models and data/ml-1m.txt, are not needed.)
Needs faiss (CPU is enough) and tqdm, scipy; gensim only if installed (models.py imports it for
OfflineItemSimilarity, which main.py never builds: a stand-in module is put in its place).

The three runs differ only in `--contrast_type` (src/main.py:72-78), the code's own switch:
`Hybrid` is ICLRec (trainers.py:311-336: instance CL + intent CL against the faiss k-means
intents of the epoch, trainers.py:228-254), `InstanceCL` is the instance-CL-only model, CL4SRec as
this code base runs it (trainers.py:284-288), and `none`, a value no branch of trainers.py:284-336
matches, leaves `cl_losses` empty, so the joint loss is rec_weight x the next-item BCE alone
(trainers.py:338-342): SASRec as this code base trains it (no k-means either, trainers.py:228).

Nothing of the official code is copied here. The official modules are imported from <checkout>/src
(sys.path) and the body of src/main.py's `main()` is executed from its own source (via `ast`) up to
and including `trainer = ICLRecTrainer(...)` (main.py:30-184), with the Beauty script's flags
(src/scripts/run_beauty.sh) followed by the tiny sizes (later flags win in argparse): 24 users (the
first 24 lines of tests/data/benchmark/Beauty.txt, item ids remapped in order of first appearance,
written as Beauty.txt to a temporary --data_dir), hidden 16, 2 layers (main.py's default; the
script's 1 would leave the stacking unchecked), max_seq_length 10, 4 intent clusters, batch 8, CPU.
The training step is the official `ICLRecTrainer.iteration(0, ...)` (trainers.py:220-360) on a
loader that hands it the first batch of the official train_dataloader, drawn when the iteration
asks for it (after the epoch's clustering, as in a real run), with `model.train` made a no-op
(dropout stays off) and `optim.step` a no-op. Each term is recorded by thin wrappers around the
official methods the step calls; the total by a wrapper of `Tensor.backward` (the step's one
backward, trainers.py:342). The scores are those of the official `trainer.valid(0, full_sort=True)`
(trainers.py:362-379: the last position's output times every item embedding, `predict_full`),
recorded before the training matrix's items are zeroed, for every validation user (3 batches).

One substitution: the official KMeans builds a faiss GPU index (models.py:55-60:
StandardGpuResources, GpuIndexFlatConfig, GpuIndexFlatL2); faiss-cpu has none, so those three names
are given to the faiss module as a CPU IndexFlatL2 of the same dimension (exact L2, as the GPU flat
index; ELCRec's copy of this class makes the same change, its models.py:35). The k-means itself is
the official `KMeans.train` (faiss.Clustering, 20 iterations, 5 redos, seed 1): its raw centroids,
the normalised ones the intent CL reads and the batch's assignments are stored, and handed to ours.
"""

import argparse
import json
import os
import sys
import tempfile
import types

import numpy as np
import torch
from fixture import save_arrays, save_record
from iclrec_main import main_objects

torch.set_num_threads(1)

REPOSITORY = "salesforce/ICLRec"
COMMIT = "2890e6c3ff6a22c6699fc19cb863b66786c1cde4"
SEED = 1  # main.py:120 --seed default, utils.set_seed at main.py:132
USERS = 24
RUNS = {"iclrec": "Hybrid", "cl4srec": "InstanceCL", "sasrec": "none"}
BEAUTY_FLAGS = [  # src/scripts/run_beauty.sh
    "--data_name",
    "Beauty",
    "--cf_weight",
    "0.1",
    "--model_idx",
    "1",
    "--gpu_id",
    "0",
    "--batch_size",
    "256",
    "--contrast_type",
    "Hybrid",
    "--num_intent_cluster",
    "256",
    "--seq_representation_type",
    "mean",
    "--warm_up_epoches",
    "0",
    "--intent_cf_weight",
    "0.1",
    "--num_hidden_layers",
    "1",
]
TINY_FLAGS = [
    "--batch_size",
    "8",
    "--hidden_size",
    "16",
    "--num_hidden_layers",
    "2",
    "--max_seq_length",
    "10",
    "--num_intent_clusters",
    "4",
    "--no_cuda",
]
EMBEDDING_TABLES = ["item_embeddings.weight"]  # stored by their nonzero gradient rows


def L(line):  # noqa: N802 (an official file:line)
    return f"src/{line}"


OFFICIAL_LINES = {
    "rec_loss": [L("trainers.py:278-279"), L("trainers.py:140-156 (Trainer.cross_entropy)")],
    "cl_loss (instance CL)": [
        L("trainers.py:284-288 (InstanceCL), 318-321 (Hybrid)"),
        L("trainers.py:179-198 (_instance_cl_one_pair_contrastive_learning, concatenate)"),
        L("modules.py:145-188 (NCELoss, de_noise off)"),
    ],
    "cl_loss3 (intent CL)": [
        L("trainers.py:322-336 (Hybrid)"),
        L("trainers.py:200-218 (_pcl_one_pair_contrastive_learning, mean)"),
        L("modules.py:18-50 (PCLoss)"),
        L("models.py:73-80 (KMeans.query)"),
    ],
    "kmeans": [L("trainers.py:228-254 (every epoch, eval mode, mean-pooled)"), L("models.py:26-79 (KMeans)")],
    "joint_loss": [L("trainers.py:338-342")],
    "scores": [L("trainers.py:362-379 (full sort: model(input_ids)[:, -1, :])"), L("trainers.py:165-170")],
    "model": [
        L("models.py:115-179 (SASRecModel)"),
        L("modules.py:228-403 (gelu, LayerNorm, SelfAttention, Intermediate, Encoder)"),
    ],
}

cli = argparse.ArgumentParser()
cli.add_argument("checkout")
cli.add_argument("--sequences", default="tests/data/benchmark/Beauty.txt")
cli.add_argument("--out", default="tests/data/official")
cli.add_argument("--only", choices=sorted(RUNS), action="append")
opt = cli.parse_args()

SRC = os.path.join(os.path.abspath(opt.checkout), "src")
sys.path.insert(0, SRC)
OUT = os.path.abspath(opt.out)
os.makedirs(OUT, exist_ok=True)
work = tempfile.mkdtemp(prefix="iclrec-official-")
data_dir, off_out = os.path.join(work, "data", ""), os.path.join(work, "output", "")
os.makedirs(data_dir)

# the data: the first 24 users, items renumbered 1.. in order of first appearance
with open(opt.sequences) as handle:
    lines = [line.split() for line in handle.read().splitlines() if line.strip()][:USERS]
renumber = {}
for line in lines:
    for item in line[1:]:
        renumber.setdefault(item, len(renumber) + 1)
with open(os.path.join(data_dir, "Beauty.txt"), "w") as handle:
    handle.writelines(" ".join([line[0]] + [str(renumber[i]) for i in line[1:]]) + "\n" for line in lines)

# ----------------------------------------------------------------------------------------------
# the environment the official imports expect
# ----------------------------------------------------------------------------------------------
import faiss  # noqa: E402

faiss.omp_set_num_threads(1)


class _CpuResources:  # stands in for faiss.StandardGpuResources (models.py:55-56)
    def noTempMemory(self):  # noqa: N802 (the official call)
        pass


class _CpuConfig:  # stands in for faiss.GpuIndexFlatConfig (models.py:57-59)
    useFloat16, device = False, 0


faiss.StandardGpuResources, faiss.GpuIndexFlatConfig = _CpuResources, _CpuConfig
faiss.GpuIndexFlatL2 = lambda resources, dimension, config: faiss.IndexFlatL2(dimension)
try:
    import gensim  # noqa: F401
except ImportError:
    sys.modules["gensim"] = types.ModuleType("gensim")  # never used: OfflineItemSimilarity is not built

def official_objects(contrast_type):
    """main.py's own statements up to the trainer, with the Beauty flags, the tiny sizes and the contrast type."""
    flags = BEAUTY_FLAGS + TINY_FLAGS + ["--contrast_type", contrast_type]
    flags += ["--data_dir", data_dir, "--output_dir", off_out]
    ns = main_objects(SRC, flags, functions=("show_args_info",))
    return flags, ns


def run(model_name, contrast_type):
    flags, ns = official_objects(contrast_type)
    args, model, trainer = ns["args"], ns["model"], ns["trainer"]
    assert not args.cuda_condition and args.contrast_type == contrast_type
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    rec = {"cross_entropy": [], "instance": [], "pcl": [], "backward": [], "train": [], "query": [], "scores": []}

    # thin wrappers: they record and call the official methods unchanged
    def wrap(name, key):
        original = getattr(trainer, name)

        def recorded(*a, **k):
            out = original(*a, **k)
            rec[key].append(out)
            return out

        setattr(trainer, name, recorded)

    wrap("cross_entropy", "cross_entropy")
    wrap("_instance_cl_one_pair_contrastive_learning", "instance")
    wrap("_pcl_one_pair_contrastive_learning", "pcl")
    wrap("predict_full", "scores")
    for cluster in trainer.clusters:
        train, query = cluster.train, cluster.query

        def train_recorded(x, cluster=cluster, train=train):
            train(x)
            raw = faiss.vector_to_array(cluster.clus.centroids).reshape(cluster.num_cluster, cluster.hidden_size)
            rec["train"].append((x.copy(), raw.copy(), cluster.centroids.detach().clone()))

        def query_recorded(x, query=query):
            out = query(x)
            rec["query"].append((x.copy(), out[0].clone(), out[1].detach().clone()))
            return out

        cluster.train, cluster.query = train_recorded, query_recorded

    backward = torch.Tensor.backward

    def backward_recorded(self, *a, **k):
        rec["backward"].append(self.detach().clone())
        return backward(self, *a, **k)

    class OneBatch:  # the first batch of the official train_dataloader, drawn when the step asks
        def __len__(self):
            return 1

        def __iter__(self):
            rec["batch"] = next(iter(ns["train_dataloader"]))
            yield rec["batch"]

    model.eval()  # dropout off
    model.train = lambda mode=True: model  # keeps eval through trainers.py:258
    trainer.optim.step = lambda *a, **k: None  # no update (trainers.py:343)
    args.log_file = os.path.join(off_out, f"{model_name}-fixture.txt")
    torch.Tensor.backward = backward_recorded
    try:
        trainer.iteration(0, OneBatch(), ns["cluster_dataloader"])
    finally:
        torch.Tensor.backward = backward
    gradients = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    inputs = []
    hook = model.register_forward_pre_hook(lambda module, a: inputs.append(a[0].clone()))
    trainer.valid(0, full_sort=True)
    hook.remove()
    assert all(torch.equal(weights[name], p) for name, p in model.named_parameters())  # no update happened

    # ---- the numbers
    (rec_batch, cl_batches, seq_class_label_batches) = rec["batch"]
    user_ids, input_ids, target_pos, target_neg, answers = rec_batch
    assert len(cl_batches) == 1 and len(cl_batches[0]) == 2 and len(rec["backward"]) == 1
    losses = {"rec_loss": rec["cross_entropy"][0], "joint_loss": rec["backward"][0]}
    check = args.rec_weight * losses["rec_loss"]
    if contrast_type in ("Hybrid", "InstanceCL"):
        losses["cl_loss1" if contrast_type == "Hybrid" else "cl_loss"] = rec["instance"][0]
        check = check + args.cf_weight * rec["instance"][0]
    if contrast_type == "Hybrid":
        losses["cl_loss3"] = rec["pcl"][0]
        check = check + args.intent_cf_weight * rec["pcl"][0]
    assert len(rec["instance"]) == (contrast_type != "none") and len(rec["pcl"]) == (contrast_type == "Hybrid")
    assert float(check) == float(losses["joint_loss"]), (float(check), float(losses["joint_loss"]))
    arrays = {f"weight/{name}": value.numpy() for name, value in weights.items()}
    batch = {
        "user_ids": user_ids,
        "input_ids": input_ids,
        "target_pos": target_pos,
        "target_neg": target_neg,
        "answers": answers,
        "cl_batches/0/0": cl_batches[0][0],
        "cl_batches/0/1": cl_batches[0][1],
        "seq_class_label_batches": seq_class_label_batches,
    }
    arrays |= {name: value.numpy().astype(np.int64) for name, value in batch.items()}
    arrays |= {f"loss/{name}": np.float64(value.item()) for name, value in losses.items()}
    for name, grad in gradients.items():
        grad = grad.numpy().astype(np.float32)
        if name in EMBEDDING_TABLES:
            rows = np.nonzero(np.any(grad != 0, axis=1))[0].astype(np.int64)
            arrays[f"grad_rows/{name}"], grad = rows, grad[rows]
        arrays[f"grad/{name}"] = grad
    arrays["scores"] = torch.cat(rec["scores"]).detach().numpy().astype(np.float32)
    arrays["scores_input_ids"] = torch.cat(inputs).numpy().astype(np.int64)
    kmeans = {}
    if contrast_type == "Hybrid":
        ((data, raw, normalised),) = rec["train"]
        ((query_input, intent_ids, seq2intent),) = rec["query"]
        assert torch.equal(seq2intent, normalised[intent_ids])
        arrays["kmeans/training_data"] = data.astype(np.float32)  # the epoch's mean-pooled users
        arrays["kmeans/centroids_raw"] = raw.astype(np.float32)  # faiss's (the index queries these)
        arrays["kmeans/centroids"] = normalised.numpy().astype(np.float32)  # L2-normalised (the intents)
        arrays["kmeans/query_input"] = query_input.astype(np.float32)  # the batch's mean-pooled main output
        arrays["kmeans/intent_ids"] = intent_ids.numpy().astype(np.int64)
        kmeans = {
            "clusters": int(raw.shape[0]),
            "points": int(data.shape[0]),
            "intent_ids": intent_ids.tolist(),
            "faiss": faiss.__version__,
            "index": "IndexFlatL2 in place of GpuIndexFlatL2 (models.py:55-60)",
            "settings": "faiss.Clustering niter 20, nredo 5, seed 1, max_points_per_centroid 4096 (models.py:43-53)",
        }
    else:
        assert not rec["train"] and not rec["query"]
    for key, value in arrays.items():
        if np.issubdtype(value.dtype, np.floating):
            assert np.all(np.isfinite(value)), key

    npz_path, _ = save_arrays(OUT, f"{model_name}_train", arrays)
    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "model": model_name,
        "contrast_type": contrast_type,
        "command": "OMP_NUM_THREADS=1 python workflow/scripts/official/iclrec_train.py ICLRec",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "faiss_version": faiss.__version__,
        "seed": SEED,
        "data": (
            f"the first {USERS} users of {opt.sequences}, item ids renumbered 1..{len(renumber)} in order of first "
            "appearance (the identity for this file), written as Beauty.txt to a temporary --data_dir"
        ),
        "official_flags": [f if f not in (data_dir, off_out) else "<temporary>" for f in flags],
        "settings": {
            key: getattr(args, key)
            for key in (
                "item_size",
                "mask_id",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "hidden_act",
                "max_seq_length",
                "initializer_range",
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "contrast_type",
                "cf_weight",
                "intent_cf_weight",
                "rec_weight",
                "temperature",
                "num_intent_clusters",
                "seq_representation_type",
                "seq_representation_instancecl_type",
                "warm_up_epoches",
                "de_noise",
                "augment_type",
                "tao",
                "gamma",
                "beta",
                "batch_size",
                "seed",
            )
        },
        "losses": {name: value.item() for name, value in losses.items()},
        "total": {
            "iclrec": "joint_loss = rec_weight*rec_loss + cf_weight*cl_loss1 + intent_cf_weight*cl_loss3",
            "cl4srec": "joint_loss = rec_weight*rec_loss + cf_weight*cl_loss",
            "sasrec": "joint_loss = rec_weight*rec_loss (no branch for contrast_type 'none')",
        }[model_name],
        "official_lines": OFFICIAL_LINES,
        "kmeans": kmeans,
        "sampling": (
            "utils.set_seed(1) (main.py:132); main.py's statements in order (SASRecModel's init and the trainer's "
            "unused projection head draw from the torch generator); the batch is the first of the official "
            "train_dataloader (RandomSampler, batch 8), drawn after the epoch's clustering as in a real run; its "
            "negatives (utils.neg_sample) and two views (data_augmentation.Random: crop 0.2 / mask 0.7 / reorder "
            "0.2, masking writes item 0) are drawn from Python's random inside datasets.__getitem__. The batch is "
            "stored, so ours does not depend on the generators."
        ),
        "patches": [
            "model.train -> no-op (eval: dropout off); trainer.optim.step -> no-op (no update)",
            "faiss.StandardGpuResources / GpuIndexFlatConfig / GpuIndexFlatL2 -> CPU IndexFlatL2 (faiss-cpu)",
            "gensim -> an empty module when not installed (OfflineItemSimilarity is never built)",
            "wrappers around trainer.cross_entropy / _instance_cl_... / _pcl_... / predict_full, KMeans.train / "
            "query and Tensor.backward only record",
        ],
        "shapes": {
            name: list(value.shape) for name, value in arrays.items() if not name.startswith(("grad", "weight"))
        },
        "parameters": {name: list(p.shape) for name, p in weights.items()},
        "scores": "trainer.valid(0, full_sort=True): predict_full of every validation user (3 batches of 8), "
        "before trainers.py:383 zeroes the training items",
        "npz_bytes": os.path.getsize(npz_path),
    }
    save_record(OUT, f"{model_name}_train", record)
    print(model_name, json.dumps(record["losses"]), record["npz_bytes"], "bytes")


for name, contrast in RUNS.items():
    if not opt.only or name in opt.only:
        run(name, contrast)

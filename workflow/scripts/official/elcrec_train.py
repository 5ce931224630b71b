#!/usr/bin/env python
"""Numeric fixture of the OFFICIAL ELCRec training step (yueliu1999/ELCRec) on the released
Beauty checkpoint, for one batch of 8 training samples.

Maintainer command (docs/OFFICIAL.md); it writes tests/data/official/elcrec_train_beauty.{npz,json},
which tests/test_official.py and rule official_check compare ours against:

    git clone https://github.com/yueliu1999/ELCRec
    git -C ELCRec checkout ad6e1c806c43df406f92e5671149ef28a705180f
    python workflow/scripts/official/elcrec_train.py ELCRec --ckpt FILE --data_dir DIR

FILE is the released src/output/ELCRec-Beauty-1.pt (resources/raw/beauty/ELCRec-Beauty-1.pt after
rule reference), DIR holds Beauty.txt (resources/raw/beauty/). Needs faiss (the official trainer
builds its k-means objects) and writes the official code's own logs to a temporary folder.

Nothing of the official code is copied here.  The official modules are imported from
<checkout>/src via sys.path, and the official `main()` of src/main.py is executed from its own
source (via `ast`) up to and including the construction of `trainer = ELCRecTrainer(...)`
(src/main.py:15-181), with the Beauty script's flags (src/scripts/run_beauty.sh, without
--do_eval) plus --batch_size 8 --no_cuda --data_dir/--output_dir.  The training step itself is
the official `ELCRecTrainer.iteration(...)` (src/trainers.py:197-352) run on a one-batch
"dataloader" with epoch=1 (so the epoch-0 faiss k-means block, trainers.py:202-226, is skipped and
the centres stay those of the checkpoint), `model.train` made a no-op (dropout stays off) and
`optim.step` made a no-op (so the parameters are not updated).  Each loss term is captured by
thin wrappers around the official methods that the step calls.
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch
from fixture import save_arrays, save_record
from iclrec_main import main_objects

torch.set_num_threads(1)

REPO = "yueliu1999/ELCRec"
COMMIT = "ad6e1c806c43df406f92e5671149ef28a705180f"
SEED = 1  # official default --seed (main.py:103), used by utils.set_seed at main.py:118

cli = argparse.ArgumentParser()
cli.add_argument("checkout")
cli.add_argument("--ckpt", required=True, help="the released ELCRec-Beauty-1.pt")
cli.add_argument("--data_dir", required=True, help="a folder holding Beauty.txt")
cli.add_argument("--out", default="tests/data/official")
cli.add_argument("--batch_size", type=int, default=8)
opt = cli.parse_args()

SRC = os.path.join(os.path.abspath(opt.checkout), "src")
sys.path.insert(0, SRC)
OUT = os.path.abspath(opt.out)
os.makedirs(OUT, exist_ok=True)
off_out = tempfile.mkdtemp(prefix="elcrec-official-") + "/"  # the official code's own logs

# ----------------------------------------------------------------------------------------------
# 1. Official args + objects: run main.py's own statements (imports, then main() body up to the
#    trainer construction), with the Beauty script's flags.
# ----------------------------------------------------------------------------------------------
beauty_flags = [
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
    "--intent_cf_weight",
    "0.1",
    "--num_hidden_layers",
    "1",
]  # scripts/run_beauty.sh minus --do_eval
extra_flags = ["--batch_size", str(opt.batch_size), "--no_cuda", "--data_dir", opt.data_dir, "--output_dir", off_out]
ns = main_objects(SRC, beauty_flags + extra_flags)
args, model, trainer = ns["args"], ns["model"], ns["trainer"]
train_dataloader = ns["train_dataloader"]
assert not args.cuda_condition

# ----------------------------------------------------------------------------------------------
# 2. Load the released checkpoint strictly.  (Official Trainer.load, trainers.py:97-98, calls
#    torch.load without map_location, which fails on a CPU-only machine for this CUDA-saved file,
#    so the same load_state_dict is done here with map_location="cpu".)
# ----------------------------------------------------------------------------------------------
sd = torch.load(opt.ckpt, map_location="cpu")
model.load_state_dict(sd, strict=True)
centres_ckpt = model.cluster_centers.detach().clone()

# ----------------------------------------------------------------------------------------------
# 3. One batch exactly as the official trainer gets it: the first batch of the official
#    train_dataloader (main.py:165-169: RandomSampler, default collate), here with batch_size 8.
#    RNG: utils.set_seed(1) at main.py:118, then main.py's construction order (SASRecModel init and
#    the trainer's projection init consume the torch RNG), then the RandomSampler draws its seed
#    from the torch RNG; neg sampling and augmentations use Python `random` inside __getitem__.
# ----------------------------------------------------------------------------------------------
batch = next(iter(train_dataloader))
rec_batch, cl_batches, seq_class_label_batches = batch
user_ids, input_ids, target_pos, target_neg, answers = rec_batch
assert len(cl_batches) == 1 and len(cl_batches[0]) == 2  # nCr(n_views=2, 2) = 1 pair

# ----------------------------------------------------------------------------------------------
# 4. Instrument (wrappers only record; they call the official methods unchanged).
# ----------------------------------------------------------------------------------------------
rec = {"cross_entropy": [], "instance": [], "pcl": [], "distance": [], "passes": []}

_ce = trainer.cross_entropy
_inst = trainer._instance_cl_one_pair_contrastive_learning
_pcl = trainer._pcl_one_pair_contrastive_learning
_dist = trainer.distance


def ce_w(*a, **k):
    r = _ce(*a, **k)
    rec["cross_entropy"].append(r)
    return r


def inst_w(*a, **k):
    # centres as seen by the instance-CL fusion (before the in-place normalisation at trainers.py:299)
    rec["centres_at_instance_cl"] = model.cluster_centers.detach().clone()
    r = _inst(*a, **k)
    rec["instance"].append(r)
    return r


def pcl_w(inputs, intents, intent_ids):
    rec["pcl_intents"] = [t.detach().clone() for t in intents]
    rec["pcl_intent_ids"] = [t.detach().clone() for t in intent_ids]
    r = _pcl(inputs, intents=intents, intent_ids=intent_ids)
    rec["pcl"].append(r)
    return r


def dist_w(x, c):
    r = _dist(x, c)
    rec["distance"].append(r)
    if len(rec["distance"]) == 1:
        rec["centres_at_cluster_loss"] = c.detach().clone()
        rec["seq_norm_mean"] = x.detach().clone()
    return r


trainer.cross_entropy = ce_w
trainer._instance_cl_one_pair_contrastive_learning = inst_w
trainer._pcl_one_pair_contrastive_learning = pcl_w
trainer.distance = dist_w


def fwd_hook(mod, inp, out):
    # clone: the instance-CL pass's output is modified in place (trainers.py:152)
    rec["passes"].append((tuple(inp[0].shape), out.detach().clone()))


hook = model.register_forward_hook(fwd_hook)

model.eval()  # dropout off
model.train = lambda mode=True: model  # keep eval through trainers.py:229
trainer.optim.step = lambda *a, **k: None  # stop before the update (trainers.py:333)
for p in model.parameters():
    p.grad = None

# ----------------------------------------------------------------------------------------------
# 5. The official training step (trainers.py:197-352), epoch=1 (>= warm_up_epoches=0, != 0).
# ----------------------------------------------------------------------------------------------
args.log_file = os.path.join(off_out, "ELCRec-Beauty-fixture-step.txt")
rec_avg, joint_avg = trainer.iteration(1, [batch], cluster_dataloader=None)
hook.remove()

rec_loss = rec["cross_entropy"][0]
cl_loss1 = rec["instance"][0]
cl_loss3 = rec["pcl"][0]
d_sc, d_cc = rec["distance"]
sample_distance_loss = d_sc.mean()
center_distance_loss = -d_cc.mean()
# re-sum in float32 in the official order (trainers.py:310, 323-328) to check capture
cluster_term = args.trade_off * (sample_distance_loss + center_distance_loss)
joint_check = args.rec_weight * rec_loss
joint_check = joint_check + args.cf_weight * cl_loss1
joint_check = joint_check + args.intent_cf_weight * cl_loss3
joint_check = joint_check + cluster_term
assert abs(joint_check.item() - joint_avg) <= 1e-6 * max(1.0, abs(joint_avg)), (joint_check.item(), joint_avg)
assert abs(rec_loss.item() - rec_avg) == 0.0

# ----------------------------------------------------------------------------------------------
# 6. Save.
# ----------------------------------------------------------------------------------------------
arrays = {}
batch_named = {
    "user_ids": user_ids,
    "input_ids": input_ids,
    "target_pos": target_pos,
    "target_neg": target_neg,
    "answers": answers,
    "cl_batches/0/0": cl_batches[0][0],
    "cl_batches/0/1": cl_batches[0][1],
    "seq_class_label_batches": seq_class_label_batches,
}
for k, v in batch_named.items():
    arrays[k] = v.numpy().astype(np.int64)
losses = {
    "rec_loss": rec_loss.item(),
    "cl_loss1_instance": cl_loss1.item(),
    "cl_loss3_intent": cl_loss3.item(),
    "sample_distance_loss": sample_distance_loss.item(),
    "center_distance_loss": center_distance_loss.item(),
    "cluster_loss_weighted": cluster_term.item(),
    "joint_loss": float(joint_avg),
}
for k, v in losses.items():
    arrays["loss/" + k] = np.float64(v)

grad_names = []
for name, p in model.named_parameters():
    g = p.grad
    if g is None:
        g = torch.zeros_like(p)
    g = g.detach().numpy().astype(np.float32)
    grad_names.append(name)
    if name == "item_embeddings.weight":
        rows = np.nonzero(np.any(g != 0, axis=1))[0].astype(np.int64)
        arrays["grad_rows/" + name] = rows
        arrays["grad/" + name] = g[rows]
    else:
        arrays["grad/" + name] = g

# diagnostics (not official names)
passes = rec["passes"]
arrays["debug/sequence_output"] = passes[0][1].numpy().astype(np.float32)  # rec pass (8,50,64)
arrays["debug/cl_sequence_output"] = passes[1][1].numpy().astype(np.float32)  # views pass, pre-shift (16,50,64)
c_inst = rec["centres_at_instance_cl"]
x = passes[1][1]
dis = (x * x).sum(-1, keepdim=True) + (c_inst * c_inst).sum(-1) - 2 * x @ c_inst.T
arrays["debug/instance_shift_index"] = torch.argmin(dis, dim=-1).numpy().astype(np.int64)  # (16,50)
arrays["debug/intent_index"] = rec["pcl_intent_ids"][0].numpy().astype(np.int64)  # (8,)
arrays["debug/cluster_centers_normalized"] = rec["centres_at_cluster_loss"].numpy().astype(np.float32)
arrays["debug/cluster_centers_ckpt_norms"] = centres_ckpt.norm(dim=1).numpy().astype(np.float32)

for k, v in arrays.items():
    if np.issubdtype(np.asarray(v).dtype, np.floating):
        assert np.all(np.isfinite(v)), k
npz_path, _ = save_arrays(OUT, "elcrec_train_beauty", arrays)
# identical output for a second pass on the same views (eval mode => no dropout)
assert len(passes) == 3 and torch.equal(passes[1][1], passes[2][1])


def L(a, b):  # noqa: N802 (a file:line reference)
    return f"src/{a}:{b}"


meta = {
    "repo": REPO,
    "commit": COMMIT,
    "command": "python " + " ".join(os.path.basename(a.rstrip("/")) if os.path.isabs(a) else a for a in sys.argv),
    "torch_version": torch.__version__,
    "numpy_version": np.__version__,
    "checkpoint": os.path.basename(opt.ckpt),
    "data_file": os.path.basename(args.data_file),
    "official_args_flags": beauty_flags + extra_flags,
    "official_args": {
        k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(type(v)))
        for k, v in sorted(vars(args).items())
    },
    "seed": SEED,
    "sampling": (
        "utils.set_seed(1) at main.py:118 (random, numpy, torch seeds); main.py:15-181 executed "
        "from source in order (SASRecModel init + trainer projection init consume the torch RNG; "
        "the eval/test/cluster dataloaders are built but never iterated); batch = first batch of the "
        "official train_dataloader (RandomSampler, generator=None -> seed drawn from the global torch "
        "RNG; batch_size 8 instead of 256, so these are the first 8 indices of the same permutation); "
        "target_neg (utils.neg_sample) and the two augmented views (data_augmentation.Random: each "
        "view independently picks Crop(tao=0.2)/Mask(gamma=0.7)/Reorder(beta=0.2)) use Python random "
        "inside datasets.__getitem__ in sampler order. The epoch-0 cluster pass over all users of a "
        "real run (trainers.py:202-226) is NOT executed, so the RNG state differs from a real epoch-0 "
        "batch; the fixture stores the batch so this does not matter."
    ),
    "batch_shapes": {k: list(v.shape) for k, v in batch_named.items()},
    "losses": losses,
    "weights": {
        "rec_weight": args.rec_weight,
        "cf_weight (instance CL)": args.cf_weight,
        "intent_cf_weight (intent CL)": args.intent_cf_weight,
        "trade_off (cluster loss)": args.trade_off,
        "temperature": args.temperature,
        "prototype": args.prototype,
        "seq_representation_instancecl_type": args.seq_representation_instancecl_type,
        "seq_representation_type": args.seq_representation_type,
    },
    "total": (
        "joint_loss = rec_weight*rec_loss + cf_weight*cl_loss1 + intent_cf_weight*cl_loss3 "
        "+ trade_off*(sample_distance_loss + center_distance_loss)  [float32, in this order]"
    ),
    "official_lines": {
        "rec_loss": [L("trainers.py", "241-244"), L("trainers.py", "100-116 (cross_entropy)")],
        "cl_loss1_instance": [
            L("trainers.py", "285-289"),
            L("trainers.py", "135-168"),
            L("modules.py", "274-306 (NCELoss)"),
        ],
        "sample_distance_loss": [L("trainers.py", "291-304"), L("trainers.py", "170-177 (distance)")],
        "center_distance_loss": [L("trainers.py", "306-308")],
        "cluster_loss_weighted": [L("trainers.py", "310")],
        "cl_loss3_intent": [
            L("trainers.py", "312-321"),
            L("trainers.py", "179-194"),
            L("modules.py", "309-339 (PCLoss)"),
        ],
        "joint_loss": [
            L("trainers.py", "323-328"),
            "backward at " + L("trainers.py", "331-332"),
            "optimizer.step (not run) " + L("trainers.py", "333"),
        ],
        "weights_from": [
            L("main.py", "104-106 (cf/rec/intent defaults)"),
            L("scripts/run_beauty.sh", "1-4"),
            L("main.py", "130-131 (trade_off=10 Beauty)"),
            L("main.py", "133-134 (prototype shift)"),
        ],
        "kmeans_epoch0_skipped": L("trainers.py", "201-226"),
    },
    "in_place_and_order": [
        "trainers.py:152 `cl_sequence_output += shift` in place on the encoder output of the views pass; shift = "
        "cluster_centers[argmin_k ||h_t - c_k||^2] per position t (all 50 positions, padding included), from the "
        "centres BEFORE normalisation (checkpoint norms 1.0070..1.0081); argmin carries no gradient, shift does "
        "(into cluster_centers rows).",
        "trainers.py:158-160 instance CL uses 'concatenate' -> flatten (2B, 50*64) after the shift; NCELoss temp 1, "
        "intent_ids=None (de_noise off): diagonal of sim11/sim22 set to -inf (modules.py:297-299), CE over 2B rows.",
        "trainers.py:292-294 the rec-pass sequence_output is mean-pooled over all 50 positions (padding included) "
        "and L2-normalised (F.normalize, differentiable, not detached).",
        "trainers.py:299 `self.model.cluster_centers.data = F.normalize(...data)` in place, via .data: no gradient "
        "through the normalisation; it happens AFTER the instance-CL forward and BEFORE the cluster loss and "
        "intent CL; "
        "it persists into the model (the parameter is left normalised).",
        "trainers.py:302-304 sample_distance_loss = mean over all (B x K) squared distances to ALL centres (not only "
        "the nearest); index = argmin (no grad).",
        "trainers.py:307 is a no-op (result discarded), so center_distance_loss = -mean over all K x K entries "
        "including the zero diagonal.",
        "trainers.py:312 seq2intent = cluster_centers[index] (normalised centres, NOT detached: intent CL sends "
        "gradient into the centres).",
        "trainers.py:183-188 + modules.py:316-338 intent CL: mean-pooled (not normalised) view outputs vs seq2intent; "
        "intent_ids passed as None (de_noise off), loss = (NCE(view1, intent) + NCE(view2, intent)) / 2.",
        "Three encoder passes: input_ids (B), cat(views) (2B) for instance CL, the same cat(views) (2B) again for "
        "intent CL; in eval mode passes 2 and 3 are identical.",
        "datasets.py Mask augmentation writes item id 0 (padding), not mask_id; views are left-padded with 0.",
        "Item embedding row 0 (padding_idx) has a nonzero stored vector but gets zero gradient.",
    ],
    "kmeans": (
        "Official training runs faiss k-means ONCE at epoch 0 (trainers.py:202-226) on mean-pooled outputs of all "
        "training sequences and writes the L2-normalised centroids into model.cluster_centers.data; after that "
        "the centres are learnable parameters (in the Adam optimizer, main/trainers.py:59). Not run here: centres "
        "come from the checkpoint (epoch=1 passed to iteration)."
    ),
    "encoder_passes": [list(s) for s, _ in passes],
    "parameter_names": grad_names,
    "grad_item_embeddings_nonzero_rows": int(arrays["grad_rows/item_embeddings.weight"].size),
    "patches": [
        "model.train -> no-op (keep eval)",
        "trainer.optim.step -> no-op",
        "checkpoint loaded with torch.load(map_location='cpu') + load_state_dict(strict=True) instead of "
        "Trainer.load (which lacks map_location)",
        "args.log_file redirected to official_output/ELCRec-Beauty-fixture-step.txt",
        "wrappers around trainer.cross_entropy/_instance_cl_.../_pcl_.../distance and a forward hook only record",
    ],
    "observations": {
        "intent_index (argmin over normalised centres of the normalised mean rec-pass output)": arrays[
            "debug/intent_index"
        ].tolist(),
        "instance_shift_index unique": np.unique(arrays["debug/instance_shift_index"]).tolist(),
        "checkpoint centre norms min/max": [
            float(centres_ckpt.norm(dim=1).min()),
            float(centres_ckpt.norm(dim=1).max()),
        ],
        "model.cluster_centers left normalised after the step": bool(
            torch.allclose(model.cluster_centers.detach().norm(dim=1), torch.ones(256))
        ),
    },
    "checkpoint_note": (
        "ELCRec-Beauty-1.pt was committed in 60086bb (2024-12-09), an eval-only release; the training "
        "code (trainers.py ELCRecTrainer.iteration) was added in 5ebf725 (2024-12-20). The run log "
        "src/output/ELCRec-Beauty-1.txt's Namespace has no trade_off/prototype fields."
    ),
}
# the record names no folder of this machine: the official logs' folder and the data folder by role
hide = {off_out: "<official-logs>/", os.path.join(opt.data_dir, ""): "<data_dir>/", opt.data_dir: "<data_dir>"}
save_record(OUT, "elcrec_train_beauty", meta, hide)
print(json.dumps(losses, indent=1))
print("npz", npz_path, os.path.getsize(npz_path), "bytes; passes", meta["encoder_passes"])

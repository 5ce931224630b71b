#!/usr/bin/env python
"""Numeric fixture of the OFFICIAL IOCRec training step (LFM-bot/IOCRec) on a tiny model: one batch
of 8 prefix examples with their two augmented views, and the evaluation scores of 8 users.

Maintainer command (docs/OFFICIAL.md); it writes tests/data/official/iocrec_train.{npz,json}, which
tests/test_official_iocrec.py and elcrec.official.iocrec compare ours against:

    git clone https://github.com/LFM-bot/IOCRec
    git -C IOCRec checkout a1b91db459920b4640dd14f1044684a3a5c162d5
    pip install --target PYDEPS easydict        # the official code's one import torch/numpy/scipy/tqdm lack
    PYTHONPATH=PYDEPS python workflow/scripts/official/iocrec_train.py IOCRec

The data are tests/data/benchmark/Beauty.txt (120 users, items 1..60), written for the official
reader as one line of 0-based item ids per user (DataProcessor shifts every id by +1,
data_processor.py:311, so its ids are ours: 1..60, padding 0, mask 61, 62 embedding rows).

Nothing of the official code is copied here. The official modules are imported from the checkout
(sys.path); runIOCRec.py's own statements are executed from its source (via `ast`): its imports and
its `__main__` block up to `config = parser.parse_args()` (runIOCRec.py:5-51, the official argument
defaults), then the size is made tiny on that namespace (embed_size 32, ffn_hidden 64, max_len 10,
train and eval batch 8, device cpu, dataset `beauty_bench`) and the block's next statement
`trainer = load_trainer(config)` is executed (runIOCRec.py:53: config_override, DataProcessor with
its prefix expansion, set_seed(2024)). Then the official `Trainer.train` is executed from its source
up to its epoch loop (trainer.py:114-132: the CL4SRecDataset, its shuffled DataLoader, the eval loader,
the model with its seeded initialisation, the optimiser), and the loop's first step is run as
trainer.py:133-147 runs it, with the model in eval mode (dropout off) and without `opt.step()`:
the first batch of the train loader, `model.train_forward(batch)`, `loss.backward()`. The two loss
terms are captured with forward hooks on the official `model.cross_entropy` and `model.nce_loss`.
The scores are the output of the official `model(batch)` inside the official
`Estimator.evaluate(eval_loader, model)` (estimator.py:45) for its first batch, captured by a forward
hook. The npz is written with fixed zip timestamps, so a second run gives the same bytes.
"""

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from fixture import save_arrays, save_record

torch.set_num_threads(1)

REPO = "LFM-bot/IOCRec"
COMMIT = "a1b91db459920b4640dd14f1044684a3a5c162d5"
NAME = "iocrec_train"
DATASET = "beauty_bench"
TINY = {"embed_size": 32, "ffn_hidden": 64, "max_len": 10, "train_batch": 8, "eval_batch": 8, "device": "cpu"}
MODEL_FILE = "src/model/cl_based_seq_recommender/iocrec.py"

cli = argparse.ArgumentParser()
cli.add_argument("checkout")
cli.add_argument("--sequences", default="tests/data/benchmark/Beauty.txt", help="user item item ... per line")
cli.add_argument("--out", default="tests/data/official")
opt = cli.parse_args()

CHECKOUT = os.path.abspath(opt.checkout)
sys.path.insert(0, CHECKOUT)
OUT = os.path.abspath(opt.out)
SEQUENCES = os.path.abspath(opt.sequences)
os.makedirs(OUT, exist_ok=True)

# ----------------------------------------------------------------------------------------------
# 1. The data for the official reader, in a scratch folder that becomes the working directory (the
#    official DataProcessor reads dataset/<name>/<name>.seq relative to it: data_processor.py:293-297,
#    323; the Recorder writes log/ and save/ there).
# ----------------------------------------------------------------------------------------------
scratch = tempfile.mkdtemp(prefix="iocrec-official-")
os.makedirs(os.path.join(scratch, "dataset", DATASET))
with open(SEQUENCES) as handle:
    users = [[int(item) for item in line.split()[1:]] for line in handle if line.strip()]
with open(os.path.join(scratch, "dataset", DATASET, f"{DATASET}.seq"), "w") as handle:
    handle.writelines(" ".join(str(item - 1) for item in items) + "\n" for items in users)
old_cwd, old_argv = os.getcwd(), sys.argv
os.chdir(scratch)


def statements(path: str) -> tuple[ast.Module, str]:
    with open(path) as handle:
        source = handle.read()
    return ast.parse(source, filename=path), source


# ----------------------------------------------------------------------------------------------
# 2. runIOCRec.py: its imports and its __main__ block up to parse_args, the tiny sizes, load_trainer.
# ----------------------------------------------------------------------------------------------
run_path = os.path.join(CHECKOUT, "runIOCRec.py")
run_tree, _ = statements(run_path)
run_imports = [node for node in run_tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
main_block = next(node for node in run_tree.body if isinstance(node, ast.If)).body
parse_at = next(
    index
    for index, node in enumerate(main_block)
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "config"
)
load_at = parse_at + 1
assert ast.unparse(main_block[load_at]) == "trainer = load_trainer(config)", ast.unparse(main_block[load_at])
run_ns = {"__name__": "official_run"}
sys.argv = ["runIOCRec.py", "--dataset", DATASET]
try:
    exec(compile(ast.Module(body=run_imports, type_ignores=[]), run_path, "exec"), run_ns)
    exec(compile(ast.Module(body=main_block[: parse_at + 1], type_ignores=[]), run_path, "exec"), run_ns)
    official_defaults = dict(vars(run_ns["config"]))
    for key, value in TINY.items():
        setattr(run_ns["config"], key, value)
    exec(compile(ast.Module(body=[main_block[load_at]], type_ignores=[]), run_path, "exec"), run_ns)
finally:
    sys.argv = old_argv
trainer = run_ns["trainer"]
config = trainer.config

# ----------------------------------------------------------------------------------------------
# 3. Trainer.train up to its epoch loop (datasets, loaders, model, optimiser), from its source.
# ----------------------------------------------------------------------------------------------
import src.train.trainer as trainer_module  # noqa: E402 (from the checkout, after sys.path)

trainer_path = trainer_module.__file__
trainer_tree, _ = statements(trainer_path)
trainer_class = next(node for node in trainer_tree.body if isinstance(node, ast.ClassDef) and node.name == "Trainer")
train_def = next(node for node in trainer_class.body if isinstance(node, ast.FunctionDef) and node.name == "train")
loop_at = next(index for index, node in enumerate(train_def.body) if isinstance(node, ast.For))
train_ns = dict(vars(trainer_module)) | {"self": trainer}
exec(compile(ast.Module(body=train_def.body[:loop_at], type_ignores=[]), trainer_path, "exec"), train_ns)
model, train_loader, eval_loader = train_ns["self"].training_model, train_ns["train_loader"], train_ns["eval_loader"]
weights = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}

# ----------------------------------------------------------------------------------------------
# 4. The first training step (trainer.py:133-147), eval mode, no optimiser step; losses by hooks.
# ----------------------------------------------------------------------------------------------
captured = {"cross_entropy": [], "nce_loss": [], "scores": []}
hooks = [
    model.cross_entropy.register_forward_hook(lambda module, args, out: captured["cross_entropy"].append(out)),
    model.nce_loss.register_forward_hook(lambda module, args, out: captured["nce_loss"].append(out)),
]
model.eval()  # the official loop calls model.train() (trainer.py:134): dropout off instead
batch_dict = next(iter(enumerate(train_loader)))[1]
batch_dict["epoch"], batch_dict["step"] = 0, 0
batch = {key: value.clone() for key, value in batch_dict.items() if torch.is_tensor(value)}
loss = model.train_forward(batch_dict)
model.zero_grad(set_to_none=True)
loss.backward()
for hook in hooks:
    hook.remove()
(rec_loss,), (cl_loss,) = captured["cross_entropy"], captured["nce_loss"]
assert (rec_loss + config.lamda * cl_loss).item() == loss.item()


# ----------------------------------------------------------------------------------------------
# 5. Scores: the official evaluation (estimator.py:36-57) over the eval loader; its first batch kept.
# ----------------------------------------------------------------------------------------------
def keep_scores(module, args, out):
    if not captured["scores"]:
        (data,) = args
        captured["scores"].append(({key: data[key].clone() for key in ("item_seq", "seq_len", "target")}, out))


hook = model.register_forward_hook(keep_scores)
metrics, eval_loss = trainer.estimator.evaluate(eval_loader, model)
hook.remove()
(eval_batch, scores) = captured["scores"][0]
os.chdir(old_cwd)

# ----------------------------------------------------------------------------------------------
# 6. Save (fixed zip timestamps and order: the same bytes on every run).
# ----------------------------------------------------------------------------------------------
arrays = {f"batch/{key}": value.numpy().astype(np.int64) for key, value in batch.items()}
arrays |= {f"eval/{key}": value.numpy().astype(np.int64) for key, value in eval_batch.items()}
arrays |= {f"weight/{name}": value.numpy().astype(np.float32) for name, value in weights.items()}
losses = {"rec_loss": rec_loss.item(), "cl_loss": cl_loss.item(), "total": loss.item()}
arrays |= {f"loss/{name}": np.float64(value) for name, value in losses.items()}
for name, parameter in model.named_parameters():
    grad = torch.zeros_like(parameter) if parameter.grad is None else parameter.grad
    arrays[f"grad/{name}"] = grad.detach().numpy().astype(np.float32)
arrays["scores"] = scores.detach().numpy().astype(np.float32)
for key, value in arrays.items():
    assert np.all(np.isfinite(value)), key


npz_path, digest = save_arrays(OUT, NAME, arrays)


def line(path: str, lines: str) -> str:
    return f"{path}:{lines}"


plain = (int, float, str, bool, list, type(None))
record = {
    "repository": REPO,
    "commit": COMMIT,
    "command": "PYTHONPATH=<easydict> python workflow/scripts/official/iocrec_train.py IOCRec",
    "torch_version": torch.__version__,
    "numpy_version": np.__version__,
    "seed": config.seed,
    "data": (
        f"{os.path.relpath(SEQUENCES, old_cwd) if SEQUENCES.startswith(old_cwd) else os.path.basename(SEQUENCES)}: "
        f"{len(users)} users, items 1..{config.num_items - 1} (official num_items {config.num_items}, "
        f"mask id {model.mask_id}, {model.item_embedding.num_embeddings} embedding rows); written 0-based, the "
        "official reader adds 1 (data_processor.py:311); split LS (data_processor.py:389-394): train input "
        "seq[:-3] with target seq[-3], every prefix of it one more example (data_aug, data_processor.py:546-557); "
        "eval input seq[:-2], target seq[-2]"
    ),
    "tiny_sizes": TINY,
    "official_argument_defaults": {k: v for k, v in sorted(official_defaults.items()) if isinstance(v, plain)},
    "settings": {  # the trainer's config after config_override (trainer.py:194-199)
        k: v
        for k, v in sorted(vars(config).items())
        if isinstance(v, plain) and k not in ("attr_registered", "description")
    },
    "sampling": (
        "set_seed(2024) (trainer.py:57, utils.py:17-28) seeds random, numpy and torch; the model's initialisation "
        "draws from torch (iocrec.py:139, 169, 171: torch.randn of Q_s, intentions, rou; iocrec.py:60-69 "
        "_init_weights N(0, 0.02) of every "
        "Linear/Embedding weight, Linear biases keep torch's default uniform); the train loader's RandomSampler "
        "draws its seed from torch; CL4SRecDataset.__getitem__ (dataset.py:86-126) picks each view's augmentation "
        "with np.random.choice (crop 0.2 / mask 0.7 / reorder 0.2, runIOCRec.py:11-17) and draws crop starts, mask "
        "positions and reorder shuffles with Python random (data_augmentation.py:393-460) on the FULL "
        "prefix, truncated to the last max_len items afterwards (dataset.py:100-101). The batch and its views are "
        "stored, so the comparison needs none of these generators."
    ),
    "dropout": "off: model.eval() for the step (the official loop's model.train(), trainer.py:134, is not called)",
    "batch_shapes": {key: list(value.shape) for key, value in arrays.items() if key.startswith(("batch/", "eval/"))},
    "losses": losses,
    "total": "rec_loss + lamda * cl_loss, lamda 0.1 (iocrec.py:94)",
    "official_lines": {
        "rec_loss": [
            line(MODEL_FILE, "78 (self.cross_entropy = nn.CrossEntropyLoss(), abstract_recommeder.py:13)"),
            line(MODEL_FILE, "96-108 (forward: max over the K intents of the last state . every embedding row)"),
        ],
        "cl_loss": [
            line(MODEL_FILE, "80-92 (both views: local + global encoding, disentangling, view(B*K, L*D))"),
            line("src/model/loss.py", "17-55 (InfoNCELoss, similarity 'dot', tao 1)"),
        ],
        "total": [line(MODEL_FILE, "94"), "backward at " + line("src/train/trainer.py", "144-147")],
        "scores": [
            line(MODEL_FILE, "96-108"),
            line("src/evaluation/estimator.py", "45 (logits = model(batch_dict); eval_mode full scores every row)"),
        ],
        "views": [
            line("src/dataset/dataset.py", "86-126"),
            line("src/model/data_augmentation.py", "393-460 (Crop, Mask with mask_id = num_items, Reorder)"),
        ],
    },
    "parameter_names": list(weights),
    "eval_metrics_of_the_untrained_model": {key: float(value) for key, value in metrics.items()},
    "npz_sha256": digest,
}
save_record(OUT, NAME, record, {scratch: "<scratch>"})
shutil.rmtree(scratch)
print(json.dumps(losses, indent=1))
print("npz", npz_path, os.path.getsize(npz_path), "bytes, sha256", digest)

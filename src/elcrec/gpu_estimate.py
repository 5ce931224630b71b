"""`elcrec estimate-gpu`: the grid's GPU hours as an ESTIMATE from work counted on the CPU, for as
long as no GPU has been lent to measure them (docs/GPU.md; never a measurement).

Method. For each (dataset, model, variant) of the grid (seeds share it) one training step, one
validation batch and the epoch's hook are run on the CPU at the run's resolved settings, on the
dataset's sequence file, under two counters: torch's FlopCounterMode (FLOPs) and a dispatch
counter of the operators that launch a kernel (views and other metadata-only operators left
out). Batches are built as on a GPU (data/batches.py), the Adam step as CUDA's default
(`foreach`: a few multi-tensor kernels). A step on the GPU is then modelled as

    host   = operators x LAUNCH              eager PyTorch's CPU time to launch one kernel
    device = operators x KERNEL + FLOPs / RATE
    one job on the GPU:  max(host, device)   (launches run ahead of the kernels)
    N jobs sharing it:   max(host / N, device) per job-step (their launches overlap, kernels do not)

An epoch is the steps of the model's batch unit (ceil(users / batch) for user batches),
ceil(users / eval batch) validation batches and the hook;
a run `epochs` epochs (the cap: early stopping only shortens runs, so the sum is an upper bound),
a pre-training `pretrain_epochs` epochs of its own steps. Left out: host work outside torch (the
faiss k-means of ICLRec every epoch and of ELCRec once, on the CPU either way), file writing,
start-up, and the evaluation's host fallback for tied ranks.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from elcrec import ElcrecError
from elcrec.fileio import write_text_atomic

# the assumed H100-class GPU and host (each an assumption, printed with every estimate)
ASSUMPTIONS = {
    "launch_seconds": 8e-6,  # eager PyTorch's host time per launched operator on a fast CPU
    "kernel_seconds": 3e-6,  # the shortest kernel, launch gap included
    "flops_per_second": 20e12,  # float32 (TF32 off, torch's default): about 30% of an H100's 67 TFLOP/s
}
COLUMNS = [
    "dataset",
    "model",
    "variant",
    "runs",
    "epochs",
    "steps_per_epoch",
    "step_operators",
    "step_gflop",
    "eval_operators",
    "eval_gflop",
    "hook_operators",
    "hook_gflop",
    "epoch_seconds_1_job",
    "epoch_seconds_shared",
    "gpu_hours_1_job",
    "gpu_hours_shared",
]
# settings that change how long a run is or what it learns, not the work of a step: runs differing only
# in these (seeds, Table 2's `cost`, the alpha sweep) are counted once
WORK_NEUTRAL = {"epochs", "patience", "lr", "alpha", "selection_metric", "on_divergence", "threads", "pretrain_epochs"}
METADATA_OPERATORS = {"detach", "alias", "lift_fresh", "_to_copy_noop", "sym_size", "sym_stride", "sym_numel"}


@dataclass
class Work:
    operators: int = 0
    flops: float = 0.0

    def __add__(self, other: Work) -> Work:
        return Work(self.operators + other.operators, self.flops + other.flops)

    def seconds(self, jobs: int = 1) -> float:
        host = self.operators * ASSUMPTIONS["launch_seconds"] / jobs
        device = self.operators * ASSUMPTIONS["kernel_seconds"] + self.flops / ASSUMPTIONS["flops_per_second"]
        return max(host, device)


class OperatorCounter(TorchDispatchMode):
    """Operators that would launch a kernel: every dispatched aten operator except views."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and func.__name__.split(".")[0] not in METADATA_OPERATORS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def counted(function) -> Work:
    with FlopCounterMode(display=False) as flops, OperatorCounter() as operators:
        function()
    return Work(operators.count, float(flops.get_total_flops()))


def training_work(split, model_name: str, settings: dict, seed: int = 1) -> dict[str, Work]:
    """One training step (batch, loss, backward, the run's optimiser) of the model's batch unit, one
    validation batch and the epoch hook."""
    from elcrec.evaluation import evaluate
    from elcrec.training import Trainer

    settings = settings | {"device": "cpu", "compile": False}
    trainer = Trainer(split, model_name, settings, seed)
    model = trainer.model
    model.on_epoch_start(trainer.epoch_context(0))  # epoch 0's one-off work (ELCRec's k-means start) is not per epoch
    hook = counted(lambda: model.on_epoch_start(trainer.epoch_context(1)))
    model.train()
    batches = trainer.batches()
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    step = counted(lambda: model.loss(next(batches))["total"].backward()) if parameters else Work()
    optimizer = trainer.optimizer  # the run's (BPR-MF's TF1 RMSProp takes sparse gradients; Adam would not)
    if isinstance(optimizer, torch.optim.Adam):  # as on a GPU, where torch's default is the foreach kernels
        optimizer = torch.optim.Adam(parameters, lr=1e-9, foreach=True)
    if parameters:
        optimizer.step()  # the first step also creates the optimiser's state
        step = step + counted(optimizer.step)
    model.eval()
    size = min(settings["eval_batch_size"], split.n_users)
    validation = counted(
        lambda: evaluate(
            model.score, split.valid_input[:size], split.valid_target[:size], split.valid_history, batch_size=size
        )
    )
    return {"step": step, "eval": validation, "hook": hook}


def epoch_steps(split, model_name: str, settings: dict) -> int:
    """The steps of a training epoch: ceil(users / batch) for user batches, else counted over one
    epoch of the model's batch unit (prefix examples, windows, users drawn afresh)."""
    if settings["batch_unit"] == "users":
        return math.ceil(split.n_users / settings["batch_size"])
    from elcrec.data.batches import TrainingData, training_batches

    data = TrainingData.of(split)
    unit = {"unit": settings["batch_unit"], "window": settings.get("window", 0)}
    return sum(1 for _ in training_batches(data, settings["batch_size"], torch.Generator().manual_seed(0), **unit))


def pretraining_work(data, model_name: str, settings: dict) -> tuple[Work, int]:
    """One pre-training step and the steps of a pre-training epoch."""
    from elcrec.pretraining import Pretrainer

    trainer = Pretrainer(data, model_name, settings | {"device": "cpu", "compile": False})
    model = trainer.model
    model.train()
    size = int(settings["pretrain_batch_size"])
    batches = model.pretraining_batches(data, size, trainer.optimisation.generator)
    first = next(batches)
    steps = 1 + sum(1 for _ in batches)  # counted, not kept: S3-Rec's epoch is 1,503 batches
    step = counted(lambda: model.pretraining_loss(first)["total"].backward())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-9, foreach=True)
    optimizer.step()
    return step + counted(optimizer.step), steps


def epoch_seconds(work: dict[str, Work], steps: int, eval_batches: int, jobs: int) -> float:
    return steps * work["step"].seconds(jobs) + eval_batches * work["eval"].seconds(jobs) + work["hook"].seconds(jobs)


def estimate(config: dict, sequences_dir: str | Path, jobs_per_gpu: int, say=print) -> pd.DataFrame:
    """One row per (dataset, model, variant) of the grid whose sequence file exists; the others are
    named on stderr and left out of the sums."""
    from elcrec.data.sequences import MIN_LENGTH, SequenceData
    from elcrec.experiments import expand
    from elcrec.pretraining import load_pretraining_data

    grid = expand(config)
    sequences_dir = Path(sequences_dir)
    rows, missing, splits, counted_work = [], set(), {}, {}
    pretrain_hours: dict[tuple[str, str, str], tuple[float, float]] = {}
    groups: dict[tuple[str, str, str], list] = {}
    for key in sorted(grid.runs):
        groups.setdefault((key.dataset, key.model, key.variant), []).append(key)
    for (dataset, model, variant), keys in groups.items():
        path = sequences_dir / f"{dataset}.txt"
        if not path.is_file():
            missing.add(dataset)
            continue
        settings = grid.runs[keys[0]]
        if (dataset, settings["max_len"]) not in splits:
            data = SequenceData.load(path, min_length=MIN_LENGTH)
            splits[(dataset, settings["max_len"])] = data.split(max_len=settings["max_len"])
        split = splits[(dataset, settings["max_len"])]
        work_key = (dataset, model, repr(sorted((k, v) for k, v in settings.items() if k not in WORK_NEUTRAL)))
        if work_key not in counted_work:
            say(f"counting {dataset} {model} {variant} ...")
            counted_work[work_key] = training_work(split, model, settings), epoch_steps(split, model, settings)
        work, steps = counted_work[work_key]
        eval_batches = math.ceil(split.n_users / settings["eval_batch_size"])
        epochs = int(settings["epochs"])
        row = {
            "dataset": dataset,
            "model": model,
            "variant": variant,
            "runs": len(keys),
            "epochs": epochs,
            "steps_per_epoch": steps,
            "step_operators": work["step"].operators,
            "step_gflop": work["step"].flops / 1e9,
            "eval_operators": work["eval"].operators,
            "eval_gflop": work["eval"].flops / 1e9,
            "hook_operators": work["hook"].operators,
            "hook_gflop": work["hook"].flops / 1e9,
            "epoch_seconds_1_job": epoch_seconds(work, steps, eval_batches, jobs=1),
            "epoch_seconds_shared": epoch_seconds(work, steps, eval_batches, jobs=jobs_per_gpu),
        }
        row["gpu_hours_1_job"] = len(keys) * epochs * row["epoch_seconds_1_job"] / 3600
        row["gpu_hours_shared"] = len(keys) * epochs * row["epoch_seconds_shared"] / 3600
        pretraining = grid.pretraining_of.get(keys[0])
        if pretraining is not None and pretraining not in pretrain_hours:
            pre_settings = grid.pretrainings[pretraining]
            attributes = sequences_dir / f"{dataset}.attributes.json"
            data = load_pretraining_data(path, attributes if attributes.is_file() else None, pre_settings["max_len"])
            step, pre_steps = pretraining_work(data, model, pre_settings)
            seconds = {
                jobs: pre_steps * step.seconds(jobs) * int(pre_settings["pretrain_epochs"])
                for jobs in (1, jobs_per_gpu)
            }
            pretrain_hours[pretraining] = (seconds[1] / 3600, seconds[jobs_per_gpu] / 3600)
            row["gpu_hours_1_job"] += pretrain_hours[pretraining][0]
            row["gpu_hours_shared"] += pretrain_hours[pretraining][1]
        rows.append(row)
    if missing:
        say(
            f"no sequence file in {sequences_dir} for {', '.join(sorted(missing))}: their runs are not in the estimate "
            f"(make them first, e.g. snakemake --cores 1 {sequences_dir}/{sorted(missing)[0]}.txt)"
        )
    if not rows:
        raise ElcrecError(f"no sequence file in {sequences_dir} for any dataset of the grid: nothing to estimate")
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(table: pd.DataFrame, jobs_per_gpu: int) -> str:
    assumptions = ", ".join(f"{key} {value:g}" for key, value in ASSUMPTIONS.items())
    return (
        f"ESTIMATE (no GPU run behind it; method: src/elcrec/gpu_estimate.py; {assumptions}): "
        f"{int(table['runs'].sum())} runs on {table['dataset'].nunique()} datasets, at most "
        f"{table['gpu_hours_1_job'].sum():.1f} GPU hours one job at a time, "
        f"{table['gpu_hours_shared'].sum():.1f} hours with {jobs_per_gpu} jobs sharing the GPU"
    )


def write(table: pd.DataFrame, out: str | Path) -> None:
    write_text_atomic(out, table.to_csv(index=False, float_format="%.6g"))


def main(config_path: str, sequences_dir: str, out: str, jobs_per_gpu: int | None) -> None:
    import yaml

    with open(config_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    jobs = int(jobs_per_gpu or config.get("jobs_per_gpu") or 1)
    table = estimate(config, sequences_dir, jobs, say=lambda line: print(line, file=sys.stderr, flush=True))
    write(table, out)
    print(table.to_string(index=False, float_format=lambda value: f"{value:.3g}"))
    print(summary(table, jobs))

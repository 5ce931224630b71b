"""`elcrec bench`: measured seconds per epoch and peak memory (a benchmark, never a unit test).

Prints, per epoch, the training time and the validation time separately, so "with and without
validation" can both be read off; epoch 0 also holds ELCRec's one-off k-means initialisation and
ICLRec's k-means runs every epoch. `--profile` adds the operators that dominate a training
step, the step's FLOP count, and the rate it achieves beside this device's dense matmul rate
(how far the step is from the hardware's ceiling).
`--jobs N` runs N such benchmarks at once, each in its own process (N training jobs sharing one
GPU, as the workflow's `jobs_per_gpu` does), and prints each one's figures and their throughput.
(The cost of intent learning against the number of users is `elcrec scale`: src/elcrec/scale.py.)
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from elcrec import ElcrecError
from elcrec.data.sequences import MIN_LENGTH, SequenceData
from elcrec.pretraining import Pretrainer, load_pretraining_data
from elcrec.process import subnormals_flushed
from elcrec.runinfo import device_description, peak_memory_bytes, reset_peak_memory
from elcrec.training import Trainer


def _say(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def _timed_trainer(sequences: str, model: str, settings: dict, seed: int) -> Trainer:
    """The run's trainer on the dataset, peak memory reset, and a line saying what is timed where."""
    split = SequenceData.load(sequences, min_length=MIN_LENGTH).split(max_len=settings["max_len"])
    trainer = Trainer(split, model, settings, seed)
    reset_peak_memory(trainer.device)
    _say(
        f"{model} on {sequences}: {split.n_users} users, vocab {split.vocab_size}, {device_description(trainer.device)}"
    )
    return trainer


def _timed_pretrainer(sequences: str, attributes: str | None, model: str, settings: dict) -> Pretrainer:
    """The pre-trainer (S3-Rec, DSSRec) on the dataset, peak memory reset, and the line of `_timed_trainer`."""
    data = load_pretraining_data(sequences, attributes, settings["max_len"])
    trainer = Pretrainer(data, model, settings)
    reset_peak_memory(trainer.device)
    _say(f"{model} pre-training on {sequences}: vocab {data.vocab_size}, {device_description(trainer.device)}")
    return trainer


def benchmark(sequences: str, model: str, settings: dict, seed: int, epochs: int, profile: bool) -> dict:
    trainer = _timed_trainer(sequences, model, settings, seed)
    train_times, valid_times = [], []
    for epoch in range(epochs):
        started = time.perf_counter()
        trainer.train_epoch()
        trained = time.perf_counter()
        trainer.evaluate("valid")
        finished = time.perf_counter()
        trainer.epoch += 1
        train_times.append(trained - started)
        valid_times.append(finished - trained)
        _say(
            f"epoch {epoch}: train {train_times[-1]:.2f} s, validation {valid_times[-1]:.2f} s, "
            f"with validation {train_times[-1] + valid_times[-1]:.2f} s"
        )
    steady = slice(1, None) if epochs > 1 else slice(None)
    summary = {
        "train_seconds_per_epoch": statistics.mean(train_times[steady]),
        "validation_seconds": statistics.mean(valid_times[steady]),
        "peak_memory_bytes": peak_memory_bytes(trainer.device),
    }
    summary["epoch_seconds_with_validation"] = summary["train_seconds_per_epoch"] + summary["validation_seconds"]
    _say(
        f"steady state (epochs {'1..' if epochs > 1 else '0..'}{epochs - 1}): "
        f"{summary['train_seconds_per_epoch']:.2f} s/epoch without validation, "
        f"{summary['epoch_seconds_with_validation']:.2f} s/epoch with validation; "
        f"peak memory {summary['peak_memory_bytes'] / 2**20:.0f} MiB"
    )
    if profile:
        _profile_steps(trainer)
    return summary


def benchmark_shared(sequences: str, model: str, settings: dict, seed: int, epochs: int, jobs: int) -> list[dict]:
    """`jobs` benchmarks of the model started together, one process each; their steady-state figures.
    Throughput (epochs per hour, all jobs together) against one job alone says what sharing gains."""
    with tempfile.TemporaryDirectory() as folder:
        keep = [] if subnormals_flushed() else ["--keep-subnormals"]  # the jobs compute as this process does
        commands = [
            [sys.executable, "-m", "elcrec", *keep, "bench", "--sequences", sequences, "--model", model]
            + ["--settings", json.dumps(settings), "--seed", str(seed), "--epochs", str(epochs)]
            + ["--summary-json", str(Path(folder) / f"job{job}.json")]
            for job in range(jobs)
        ]
        processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for command in commands
        ]
        outputs = [process.communicate()[0] for process in processes]
        for job, (process, output) in enumerate(zip(processes, outputs, strict=True)):
            if process.returncode != 0:
                tail = "\n".join(output.strip().splitlines()[-5:])
                raise ElcrecError(f"bench --jobs {jobs}: job {job} failed (exit {process.returncode}):\n{tail}")
        summaries = [json.loads((Path(folder) / f"job{job}.json").read_text()) for job in range(jobs)]
    for job, summary in enumerate(summaries):
        _say(
            f"job {job}: {summary['train_seconds_per_epoch']:.2f} s/epoch without validation, "
            f"{summary['epoch_seconds_with_validation']:.2f} with; "
            f"peak memory {summary['peak_memory_bytes'] / 2**20:.0f} MiB"
        )
    mean_epoch = statistics.mean(summary["epoch_seconds_with_validation"] for summary in summaries)
    _say(
        f"{jobs} jobs at once: {mean_epoch:.2f} s per epoch each (with validation), "
        f"{jobs * 3600 / mean_epoch:.0f} epochs per hour together"
    )
    return summaries


def benchmark_pretraining(sequences: str, attributes: str | None, model: str, settings: dict, epochs: int) -> dict:
    """Seconds per pre-training epoch (S3-Rec, DSSRec) and peak memory; pre-training has no validation."""
    trainer = _timed_pretrainer(sequences, attributes, model, settings)
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        losses = trainer.pretrain_epoch()
        trainer.epoch += 1
        times.append(time.perf_counter() - started)
        _say(f"pre-training epoch {epoch}: {times[-1]:.2f} s, loss {losses['loss_total']:.4f}")
    steady = slice(1, None) if epochs > 1 else slice(None)
    summary = {
        "pretrain_seconds_per_epoch": statistics.mean(times[steady]),
        "peak_memory_bytes": peak_memory_bytes(trainer.device),
    }
    _say(
        f"steady state: {summary['pretrain_seconds_per_epoch']:.2f} s per pre-training epoch; "
        f"peak memory {summary['peak_memory_bytes'] / 2**20:.0f} MiB"
    )
    return summary


def benchmark_steps(
    sequences: str,
    model: str,
    settings: dict,
    seed: int,
    steps: int,
    attributes: str | None = None,
    *,
    pretraining: bool = False,
) -> dict:
    """Seconds per step over the first `steps` steps of the initialised model, after one untimed step
    (compilation, warm-up), through the trainer's own step (amp, compile): training steps, or with
    `pretraining` pre-training steps (S3-Rec, DSSRec; `seed` is then the settings' pretrain_seed). For
    a model whose epoch takes minutes (IOCRec, S3-Rec's pre-training), or how the first epoch runs.
    No validation."""
    if steps < 1:
        raise ElcrecError(f"--steps must be at least 1, got {steps}")
    if pretraining:
        trainer = _timed_pretrainer(sequences, attributes, model, settings)
        loss, what = trainer.model.pretraining_loss, f"{model} pre-training"
    else:
        trainer = _timed_trainer(sequences, model, settings, seed)
        loss, what = trainer.model.loss, model
    batches = trainer.epoch_batches()
    trainer.optimisation.epoch(loss, itertools.islice(batches, 1), what, 0)
    timed = 0

    def counted():
        nonlocal timed
        for batch in itertools.islice(batches, steps):
            timed += 1
            yield batch

    _synchronise(trainer.device)
    started = time.perf_counter()
    trainer.optimisation.epoch(loss, counted(), what, 0)
    _synchronise(trainer.device)
    seconds = time.perf_counter() - started
    if timed == 0:
        raise ElcrecError(f"--steps: {sequences} gives a single batch; time whole epochs instead")
    summary = {
        "seconds_per_step": seconds / timed,
        "steps": timed,
        "peak_memory_bytes": peak_memory_bytes(trainer.device),
    }
    _say(
        f"{timed} {'pre-training ' if pretraining else ''}steps from initialisation (after 1 untimed): "
        f"{summary['seconds_per_step'] * 1000:.0f} ms/step; peak memory {summary['peak_memory_bytes'] / 2**20:.0f} MiB"
    )
    return summary


def _profile_steps(trainer: Trainer, steps: int = 10) -> None:
    from torch.profiler import ProfilerActivity, profile

    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    batches = trainer.batches()  # built on the model's device, negatives and views included
    timings = {"batch": 0.0, "forward": 0.0, "backward+step": 0.0}
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        done = 0
        for _ in range(steps):
            _synchronise(trainer.device)
            started = time.perf_counter()
            next_batch = next(batches, None)
            if next_batch is None:
                break
            batch = next_batch
            _synchronise(trainer.device)
            built = time.perf_counter()
            losses = model.loss(batch)
            _synchronise(trainer.device)
            forward = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            _synchronise(trainer.device)
            finished = time.perf_counter()
            timings["batch"] += built - started
            timings["forward"] += forward - built
            timings["backward+step"] += finished - forward
            done += 1
    _say(
        f"profile of {done} steps (seconds per step): "
        + ", ".join(f"{name} {value / max(done, 1):.3f}" for name, value in timings.items())
    )
    _say(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    if done:
        flops = step_flops(model, batch)
        step_seconds = (timings["forward"] + timings["backward+step"]) / done
        _say(
            f"work: {flops / 1e9:.2f} GFLOP per step (forward + backward), {flops / step_seconds / 1e9:.1f} GFLOPS "
            f"achieved; this device's dense matmul rate: {matmul_rate(trainer.device) / 1e9:.1f} GFLOPS"
        )


def step_flops(model, batch) -> float:
    """Floating-point operations of one training step (forward and backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.loss(batch)["total"].backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def matmul_rate(device: torch.device, size: int = 1024, repeats: int = 10) -> float:
    """FLOP/s of a large float32 matmul here: the ceiling a training step's rate compares with."""
    left, right = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    left @ right
    _synchronise(device)
    started = time.perf_counter()
    for _ in range(repeats):
        left @ right
    _synchronise(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""`elcrec bench`, `estimate-gpu` and `scale`: the commands that measure (printed figures, never tests)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from elcrec import ElcrecError
from elcrec.cli.common import full_settings, settings_argument


def _bench(args: argparse.Namespace) -> None:
    from elcrec.bench import benchmark, benchmark_pretraining, benchmark_shared, benchmark_steps
    from elcrec.fileio import write_json_atomic

    given = settings_argument(args.settings)
    settings = full_settings(args.model, given)
    if args.jobs < 1:
        raise ElcrecError(f"--jobs must be at least 1, got {args.jobs}")
    if args.steps is not None and (args.jobs > 1 or args.profile):
        raise ElcrecError("--steps times the steps of one job: leave out --jobs and --profile")
    if args.jobs > 1:
        if args.pretraining or args.profile:
            raise ElcrecError("--jobs times training epochs only: leave out --pretraining and --profile")
        benchmark_shared(args.sequences, args.model, given, args.seed, args.epochs, args.jobs)  # each completes them
        return
    if args.steps is not None:
        summary = benchmark_steps(
            args.sequences, args.model, settings, args.seed, args.steps, args.attributes, pretraining=args.pretraining
        )
    elif args.pretraining:
        summary = benchmark_pretraining(args.sequences, args.attributes, args.model, settings, args.epochs)
    else:
        summary = benchmark(args.sequences, args.model, settings, args.seed, args.epochs, args.profile)
    if args.summary_json:
        write_json_atomic(args.summary_json, summary)


def _estimate_gpu(args: argparse.Namespace) -> None:
    from elcrec import gpu_estimate

    gpu_estimate.main(args.configfile, args.sequences_dir, args.out, args.jobs_per_gpu)


def _scale(args: argparse.Namespace) -> None:
    from elcrec import scale

    table = scale.run(args.users, args.out, clusters=args.clusters, threads=args.threads)
    print(table.to_string(index=False), file=sys.stderr)
    print(f"{args.out}: {len(table)} points", file=sys.stderr)


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add this module's commands; `command(name, help)` makes a subcommand's parser."""
    bench = command("bench", "seconds per training epoch and peak memory (a benchmark)")
    bench.add_argument("--sequences", required=True, help="the dataset's sequence file")
    bench.add_argument("--model", required=True, help="a registered model name")
    bench.add_argument("--settings", default="{}", help="JSON or @file; e.g. the paper's Beauty ELCRec settings")
    bench.add_argument("--seed", type=int, default=1, help="seed of the timed model")
    bench.add_argument("--epochs", type=int, default=2, help="epochs timed (each with and without validation)")
    bench.add_argument("--profile", action="store_true", help="print the operators that dominate a training step")
    bench.add_argument(
        "--pretraining", action="store_true", help="time pre-training epochs instead (S3-Rec, DSSRec; no validation)"
    )
    bench.add_argument("--attributes", help="with --pretraining: the item attributes JSON (S3-Rec's AAP and MAP)")
    bench.add_argument(
        "--jobs", type=int, default=1, help="time this many copies at once, one process each (jobs sharing a GPU)"
    )
    bench.add_argument(
        "--steps",
        type=int,
        help="time this many steps from initialisation instead of epochs (after one untimed step; no "
        "validation; with --pretraining, pre-training steps): for models whose epoch takes minutes",
    )
    bench.add_argument("--summary-json", help="also write the steady-state figures to this JSON file")
    bench.set_defaults(handler=_bench)

    estimate = command(
        "estimate-gpu", "the grid's GPU hours, ESTIMATED from operators and FLOPs counted on the CPU (no GPU needed)"
    )
    estimate.add_argument("--configfile", default="config/config.yaml", help="the config whose grid is estimated")
    estimate.add_argument(
        "--sequences-dir", default="resources/sequences", help="the sequence files (datasets without one are named)"
    )
    estimate.add_argument("--jobs-per-gpu", type=int, help="jobs sharing one GPU (default: the config's jobs_per_gpu)")
    estimate.add_argument("--out", default="results/tables/gpu_estimate.csv", help="CSV to write")
    estimate.set_defaults(handler=_estimate_gpu)

    scale = command("scale", "the scale study: ELCRec cluster step vs ICLRec E-step against users")
    scale.add_argument(
        "--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="synthetic user counts"
    )
    scale.add_argument("--clusters", type=int, default=256, help="intent clusters k of both methods")
    scale.add_argument("--threads", type=int, default=1, help="torch and faiss threads of each measurement")
    scale.add_argument("--out", default="results/tables/scale.csv", help="CSV to write")
    scale.set_defaults(handler=_scale)

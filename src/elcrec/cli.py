"""`elcrec <command>`: the entry points the workflow rules call (and people may call by hand)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from elcrec import ElcrecError, __version__


def _download(args: argparse.Namespace) -> None:
    from elcrec.data.download import Source, fetch
    from elcrec.fileio import write_json_atomic

    algorithm = "sha256" if args.sha256 else "md5" if args.md5 else None
    source = Source(
        name=args.name or Path(args.dest).name, url=args.url, algorithm=algorithm, digest=args.sha256 or args.md5
    )
    record = fetch(source, args.dest, mirror_dir=args.mirror_dir, retries=args.retries, timeout_s=args.timeout)
    if args.record:
        write_json_atomic(args.record, record)
    line = f"{record['name']}: {record['verification']} (sha256 {record['sha256']})"
    print(line, file=sys.stderr)
    if record["download_error"] and args.terminal is not None:
        print(f"elcrec download: warning: {line}", file=args.terminal)  # a fallback is worth seeing


def _sequences(args: argparse.Namespace) -> None:
    from elcrec.data.attributes import attribute_stats, build_attributes, write_attributes
    from elcrec.data.preprocess import build_sequences
    from elcrec.data.readers import read_interactions
    from elcrec.data.registry import attribute_sources, check_attributes, check_route, interaction_sources
    from elcrec.data.sequences import MIN_LENGTH, SequenceData, dataset_stats
    from elcrec.fileio import atomic_path, write_json_atomic

    spec = json.loads(args.spec)
    check_route(spec)
    spec.setdefault("sources", [])
    check_attributes(spec)
    records = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.records or []]
    # the inputs are the route's files by name: those only the attributes read are not interactions
    attribute_only = set(attribute_sources(spec)) - set(interaction_sources(spec))
    inputs = [path for path in args.inputs if Path(path).name not in attribute_only]
    item_names = None
    if spec["format"] == "sequences":
        if len(inputs) != 1:
            raise ElcrecError(f"dataset {spec['name']}: the 'sequences' format takes one file, got {len(inputs)}")
        # the format and every user's length, checked before the file becomes the sequence file
        SequenceData.load(inputs[0], min_length=MIN_LENGTH)
        with atomic_path(args.output) as temporary:
            shutil.copyfile(inputs[0], temporary)
        steps = None
    else:
        interactions = read_interactions(spec["format"], inputs, spec.get("reader"))
        preprocessing = spec.get("preprocessing", {})
        sequences, steps, item_names = build_sequences(interactions, preprocessing)
        short = [index for index, sequence in enumerate(sequences) if len(sequence) < MIN_LENGTH]
        if short:
            raise ElcrecError(
                f"dataset {spec['name']}: after preprocessing {preprocessing}, {len(short)} users have fewer than "
                f"{MIN_LENGTH} items (user {short[0] + 1}: {len(sequences[short[0]])}), which the leave-one-out "
                f"split needs: set preprocessing.user_k to {MIN_LENGTH} or more"
            )
        SequenceData.from_sequences(sequences).save(args.output)
    attributes = build_attributes(spec, args.inputs, SequenceData.load(args.output), item_names)
    stats = dataset_stats(args.output, records, steps, spec) | {"attributes": attribute_stats(attributes)}
    if args.attributes:
        write_attributes(args.attributes, attributes)
    write_json_atomic(args.stats, stats)
    described = "no attributes" if attributes is None else f"{stats['attributes']['vocabulary']} attributes"
    print(
        f"{spec['name']}: {stats['users']} users, {stats['items']} items, {stats['interactions']} interactions, "
        f"{described}",
        file=sys.stderr,
    )


def _settings_argument(text: str) -> dict:
    """--settings takes JSON or @path/to/file.json."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise ElcrecError(f"--settings: not valid JSON ({error})") from error
    if not isinstance(settings, dict):
        raise ElcrecError("--settings: expected a JSON object")
    return settings


def _full_settings(model: str, given: dict) -> dict:
    """Settings as given, completed from the model's defaults; unknown keys and bad values are errors."""
    from elcrec.settings import check, model_defaults

    defaults = model_defaults(model)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ElcrecError(f"--settings: unknown setting(s) {unknown} for model {model!r}; known: {sorted(defaults)}")
    check(given, "--settings", model)
    return defaults | given


def _train(args: argparse.Namespace) -> None:
    from elcrec.data.sequences import MIN_LENGTH, SequenceData
    from elcrec.fileio import file_digest
    from elcrec.models.registry import model_class
    from elcrec.training import run

    settings = _full_settings(args.model, _settings_argument(args.settings))
    if args.threads is not None:
        settings["threads"] = args.threads
    split = SequenceData.load(args.sequences, min_length=MIN_LENGTH).split(max_len=settings["max_len"])
    provenance = {
        "dataset": args.dataset,
        "variant": args.variant,
        "data_sha256": file_digest(args.sequences, "sha256"),
    }
    initial_state = None
    if model_class(args.model).pretrains:
        if not args.pretrained:
            raise ElcrecError(
                f"model {args.model!r} fine-tunes a pre-training: give --pretrained (the pretrained.pt that "
                "rule `pretrain` or `elcrec pretrain` writes)"
            )
        from elcrec.pretraining import fine_tuning_start

        initial_state, provenance["pretraining"] = fine_tuning_start(
            args.pretrained, args.model, settings, split.vocab_size
        )
    elif args.pretrained:
        raise ElcrecError(f"model {args.model!r} has no pre-training stage; --pretrained is for models that do")
    record = run(split, args.model, settings, args.seed, args.run_dir, provenance, initial_state)
    if record["status"] == "diverged":
        message = record["divergence"]["message"]
        line = f"elcrec train: warning: {args.model} seed {args.seed} diverged ({message}); recorded in {args.run_dir}"
        print(line, file=sys.stderr)
        if getattr(args, "terminal", None) is not None:  # seen beyond the rule's log, too
            print(line, file=args.terminal)
        return
    test = " ".join(f"{name} {value:.4f}" for name, value in record["test"].items())
    print(f"{args.model} seed {args.seed}: best epoch {record['best_epoch']}, test {test}", file=sys.stderr)


def _pretraining_inputs(args: argparse.Namespace) -> tuple[dict, object, dict]:
    """The settings, pre-training data and provenance of `pretrain` and `import-pretrained`."""
    from elcrec.fileio import file_digest
    from elcrec.pretraining import load_pretraining_data

    settings = _full_settings(args.model, _settings_argument(args.settings))
    if getattr(args, "threads", None) is not None:
        settings["threads"] = args.threads
    data = load_pretraining_data(args.sequences, args.attributes, settings["max_len"], args.dataset)
    provenance = {
        "dataset": args.dataset,
        "data_sha256": file_digest(args.sequences, "sha256"),
        "attributes_sha256": file_digest(args.attributes, "sha256") if args.attributes else None,
    }
    return settings, data, provenance


def _pretrain(args: argparse.Namespace) -> None:
    from elcrec.pretraining import pretrain

    settings, data, provenance = _pretraining_inputs(args)
    record = pretrain(data, args.model, settings, args.out_dir, provenance)
    losses = " ".join(f"{name[5:]} {value:.4f}" for name, value in record["final_losses"].items())
    print(
        f"{args.model} pre-training {record['pretraining']}: {record['epochs_run']} epochs, "
        f"{record['pretraining_seconds']:.1f} s, last epoch {losses}",
        file=sys.stderr,
    )


def _import_pretrained(args: argparse.Namespace) -> None:
    from elcrec.pretraining import import_official

    settings, data, provenance = _pretraining_inputs(args)
    record = import_official(args.state_dict, data, args.model, settings, args.out_dir, provenance)
    print(
        f"{args.model} pre-training {record['pretraining']}: imported {record['imported_from']['file']} "
        f"(sha256 {record['imported_from']['sha256'][:12]}, {record['parameters']} parameters) -> {args.out_dir}",
        file=sys.stderr,
    )


def _pretraining_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sequences", required=True, help="the dataset's sequence file")
    parser.add_argument(
        "--attributes", help="the dataset's item attributes JSON (the data stage's; null or absent: none)"
    )
    parser.add_argument("--model", required=True, help="a registered model with a pre-training stage")
    parser.add_argument("--settings", default="{}", help="resolved settings, JSON or @file (missing keys: defaults)")
    parser.add_argument("--out-dir", required=True, help="results/pretrain/{dataset}/{model}/{pretraining}")
    parser.add_argument("--dataset", help="recorded in metrics.json; named in errors")


def _check_official(args: argparse.Namespace) -> None:
    from elcrec.fileio import write_json_atomic
    from elcrec.official import check

    record = check(
        args.model,
        args.weights and Path(args.weights),
        args.sequences and Path(args.sequences),
        args.attributes and Path(args.attributes),
    )
    write_json_atomic(Path(args.json), record)
    print(f"{record['model']} against {record['official_code']}: {record['status']}", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> None:
    from elcrec.data.sequences import MIN_LENGTH, SequenceData
    from elcrec.evaluation import evaluate
    from elcrec.fileio import write_json_atomic
    from elcrec.runinfo import resolve_device
    from elcrec.training import load_model_file

    device = resolve_device(args.device)
    data = SequenceData.load(args.sequences, min_length=MIN_LENGTH)
    model, record = load_model_file(args.model_file, device, data.training_part())
    split = data.split(max_len=record["settings"]["max_len"])
    if split.vocab_size != record["vocab_size"]:
        raise ElcrecError(
            f"{args.model_file} has {record['vocab_size']} vocabulary rows but {args.sequences} needs "
            f"{split.vocab_size}: not the dataset this model was trained on"
        )
    model.eval()
    inputs, targets, history = {
        "test": (split.test_input, split.test_target, split.test_history),
        "valid": (split.valid_input, split.valid_target, split.valid_history),
    }[args.split]
    result = evaluate(model.score, inputs, targets, history, args.masking, device=device)
    for name, value in result.metrics.items():
        print(f"{name} {value:.4f}")
    if args.json:
        write_json_atomic(args.json, {"split": args.split, "masking": args.masking, "metrics": result.metrics})


def _import_reference(args: argparse.Namespace) -> None:
    import torch

    from elcrec.models.reference import convert_reference_state, reference_layout
    from elcrec.models.registry import build
    from elcrec.training import save_model_file

    state = torch.load(args.state_dict, map_location="cpu", weights_only=True)
    layout = reference_layout(state)
    for name, given in (("layers", args.layers), ("clusters", args.clusters)):
        if layout[name] != given:
            raise ElcrecError(f"{args.state_dict}: has {layout[name]} {name}, but --{name} {given} was given")
    settings = _full_settings(
        "elcrec",
        {
            "layers": args.layers,
            "clusters": args.clusters,
            "max_len": layout["max_len"],
            "hidden_size": layout["hidden_size"],
        },
    )
    model = build("elcrec", layout["vocab_size"], settings)
    backbone_state, centres = convert_reference_state(state)
    model.backbone.load_state_dict(backbone_state, strict=True)
    model.centres.data.copy_(centres)
    save_model_file(args.output, "elcrec", layout["vocab_size"], settings, model.state_dict())
    print(f"{args.output}: elcrec, {layout}", file=sys.stderr)


def _bench(args: argparse.Namespace) -> None:
    from elcrec.bench import benchmark, benchmark_pretraining, benchmark_shared, benchmark_steps
    from elcrec.fileio import write_json_atomic

    given = _settings_argument(args.settings)
    settings = _full_settings(args.model, given)
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


def _analyse(args: argparse.Namespace) -> None:
    from elcrec.models.registry import registered
    from elcrec.report import claims, tables
    from elcrec.stats import load_paper

    paper = load_paper(args.paper)
    paper_claims = claims.load(args.claims)
    built = tables.build(
        args.runs,
        args.sequences_dir,
        paper,
        args.seeds,
        set(registered()),
        args.tolerance,
        paper_claims,
        args.reference,
        claims.load(args.claims, "beyond"),
        grid_configs=args.grid_configs,
    )
    tables.write(built, args.out)
    print(f"{args.out}: {len(built)} tables from {len(built['runs'])} runs", file=sys.stderr)


def _report(args: argparse.Namespace) -> None:
    from elcrec.report import render

    if not Path(args.tables).is_dir():
        raise ElcrecError(f"{args.tables}: no tables folder (run `elcrec analyse` first)")
    written = render.render(args.tables, args.out)
    print(" ".join(str(path) for path in written.values()), file=sys.stderr)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help line, except where there is none to show (a required
    option, a flag, an unset value whose meaning the help text gives)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.required or action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# the commands that train or time models: their process gets elcrec.process's CPU settings first
COMPUTE_COMMANDS = frozenset({"train", "pretrain", "evaluate", "bench", "scale", "estimate-gpu", "check-official"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elcrec", description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"elcrec {__version__}")
    parser.add_argument(
        "--log",
        help="write everything the command prints on stderr to this file; an error's message also "
        "reaches the terminal (the workflow's rules use this for logs/)",
    )
    parser.add_argument(
        "--keep-subnormals",
        action="store_true",
        help="compute with subnormal floats on the CPU instead of flushing them to zero (the default for "
        f"{', '.join(sorted(COMPUTE_COMMANDS))}: the same numbers to float rounding, and the contrastive models' "
        "first training steps up to twice as fast; see elcrec/process.py)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 (argparse's own keyword)
        return commands.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter)

    download = command("download", "fetch one source file, verified by checksum")
    download.add_argument("--url", help="http(s):// or file:// address (omit for mirror-only sources)")
    download.add_argument("--dest", required=True, help="where the verified file goes")
    download.add_argument("--name", help="file name looked up in the mirror (default: dest's name)")
    digest = download.add_mutually_exclusive_group()
    digest.add_argument("--sha256", help="expected sha256 (omit both for trust-on-first-use)")
    digest.add_argument("--md5", help="expected md5")
    download.add_argument("--mirror-dir", help="folder searched first for a file of the same name")
    download.add_argument("--retries", type=int, default=3, help="extra attempts on network errors")
    download.add_argument("--timeout", type=float, default=60.0, help="seconds per network read")
    download.add_argument("--record", help="write the provenance record (JSON) here")
    download.set_defaults(handler=_download)

    sequences = command("sequences", "raw files -> sequence file + stats")
    sequences.add_argument("--spec", required=True, help="the resolved dataset recipe as JSON")
    sequences.add_argument("--inputs", nargs="+", required=True, help="the verified raw files")
    sequences.add_argument("--records", nargs="*", help="their provenance records (JSON)")
    sequences.add_argument("--output", required=True, help="sequence file to write")
    sequences.add_argument("--stats", required=True, help="stats JSON to write")
    sequences.add_argument(
        "--attributes", help="item attributes JSON to write (item id -> attribute ids; null: the dataset has none)"
    )
    sequences.set_defaults(handler=_sequences)

    train = command("train", "train, validate and test one run -> run directory")
    train.add_argument("--sequences", required=True, help="the dataset's sequence file")
    train.add_argument("--model", required=True, help="a registered model name")
    train.add_argument("--settings", default="{}", help="resolved settings, JSON or @file (missing keys: defaults)")
    train.add_argument("--seed", type=int, default=1, help="the run's seed (parameters, batches, augmentations)")
    train.add_argument("--threads", type=int, help="CPU threads (default: the settings' `threads`)")
    train.add_argument("--run-dir", required=True, help="results/runs/{dataset}/{model}/{variant}/seed{seed}")
    train.add_argument("--dataset", help="recorded in metrics.json")
    train.add_argument("--variant", help="recorded in metrics.json")
    train.add_argument(
        "--pretrained",
        help="pretrained.pt of the run's pre-training (models with a pre-training stage: S3-Rec, DSSRec)",
    )
    train.set_defaults(handler=_train)

    pretrain = command("pretrain", "pre-train a model (S3-Rec, DSSRec) -> pre-training folder")
    _pretraining_arguments(pretrain)
    pretrain.add_argument("--threads", type=int, help="CPU threads (default: the settings' `threads`)")
    pretrain.set_defaults(handler=_pretrain)

    official = command("import-pretrained", "an official pre-trained S3-Rec model -> the pre-training `official`")
    official.add_argument("state_dict", help="e.g. resources/raw/beauty/S3Rec-Beauty-epochs-150.pt (role pretrained)")
    _pretraining_arguments(official)
    official.set_defaults(handler=_import_pretrained)

    check = command("check-official", "a model against its official code's numbers (docs/OFFICIAL.md)")
    check.add_argument("--model", required=True, help="a model with a fixture of its official code (docs/OFFICIAL.md)")
    check.add_argument("--weights", help="the official weights the fixture was made with (s3rec, elcrec)")
    check.add_argument("--sequences", help="the dataset's sequence file (with --weights)")
    check.add_argument("--attributes", help="its item attributes JSON (S3-Rec)")
    check.add_argument("--json", required=True, help="where the record goes (results/official/...)")
    check.set_defaults(handler=_check_official)

    evaluate = command("evaluate", "full-ranking metrics of a model file on a dataset")
    evaluate.add_argument("model_file", help="model.pt of a run, or the output of import-reference")
    evaluate.add_argument("--sequences", required=True, help="the sequence file the model was trained on")
    evaluate.add_argument("--split", choices=("test", "valid"), default="test", help="which held-out item to rank")
    evaluate.add_argument(
        "--masking",
        choices=("zero", "exclude"),
        default="zero",
        help="history items scored 0 (the authors' code) or removed from the ranking",
    )
    evaluate.add_argument("--device", default="auto", help="auto (CUDA when torch sees it), cpu or cuda")
    evaluate.add_argument("--json", help="also write the metrics here")
    evaluate.set_defaults(handler=_evaluate)

    reference = command("import-reference", "the authors' ELCRec state dict -> an elcrec model file")
    reference.add_argument(
        "state_dict", help="a released checkpoint, e.g. resources/raw/beauty/ELCRec-Beauty-1.pt (from rule reference)"
    )
    reference.add_argument("--layers", type=int, required=True, help="encoder layers (checked against the file)")
    reference.add_argument("--clusters", type=int, required=True, help="intent clusters k (checked against the file)")
    reference.add_argument("--output", required=True, help="model file to write")
    reference.set_defaults(handler=_import_reference)

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

    analyse = command("analyse", "run directories -> the paper's tables (results/tables/*.csv)")
    analyse.add_argument("--runs", default="results/runs", help="root of the run directories")
    analyse.add_argument("--sequences-dir", default="resources/sequences", help="where the {dataset}.stats.json are")
    analyse.add_argument("--paper", default="config/paper.yaml", help="the published numbers")
    analyse.add_argument(
        "--claims",
        default="config/claims.yaml",
        help="the paper's claims (and the verdicts beyond the paper) with their rules",
    )
    analyse.add_argument(
        "--reference", default="results/reference", help="rule reference's evaluations of the released checkpoints"
    )
    analyse.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="seeds every table cell should have (default: the seeds the runs under --runs have)",
    )
    analyse.add_argument("--tolerance", type=float, default=5.0, help="relative gap (%%) that flags a number")
    analyse.add_argument(
        "--grid-configs",
        nargs="+",
        help="the config files whose grid has every run finished (rule analyse passes them): the report then "
        "says the runs its tables need without results are outside that grid",
    )
    analyse.add_argument("--out", default="results/tables", help="folder the tables go to")
    analyse.set_defaults(handler=_analyse)

    report = command("report", "tables -> results/report/report.html and report.md")
    report.add_argument("--tables", default="results/tables", help="the analysis tables (elcrec analyse --out)")
    report.add_argument("--out", default="results/report", help="folder the report and its figures go to")
    report.set_defaults(handler=_report)
    return parser


@contextlib.contextmanager
def _stderr_into(log: str | None) -> Iterator[TextIO | None]:
    """With a log file, send stderr there (file descriptor 2 too, so C extensions and child
    processes write into it) and yield a stream to the terminal for the one line that must
    reach it: the error. Snakemake shows a job's terminal output but only points at its log."""
    if log is None:
        yield None
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved_fd, saved_stream = os.dup(2), sys.stderr
    with open(log, "w", encoding="utf-8") as handle:
        os.dup2(handle.fileno(), 2)
        sys.stderr = handle
        try:
            with os.fdopen(os.dup(saved_fd), "w", encoding="utf-8") as terminal:
                yield terminal
        finally:
            handle.flush()
            sys.stderr = saved_stream
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in COMPUTE_COMMANDS:
        from elcrec.process import prepare_process

        prepare_process(keep_subnormals=args.keep_subnormals)  # before torch's first parallel operator
    with _stderr_into(args.log) as terminal:
        args.terminal = terminal  # for the rare line a command wants seen beyond its log
        try:
            args.handler(args)
        except ElcrecError as error:
            message = f"elcrec {args.command}: error: {error}"
            print(message, file=sys.stderr)
            if terminal is not None:
                print(f"{message}\n(log: {args.log})", file=terminal)
            return 2
        except Exception as error:
            if terminal is None:
                raise
            traceback.print_exc(file=sys.stderr)
            print(f"elcrec {args.command}: {type(error).__name__}: {error}\n(traceback in {args.log})", file=terminal)
            return 1
    return 0

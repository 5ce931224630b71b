"""`elcrec train`, `pretrain`, `import-pretrained`, `check-official`, `evaluate` and `import-reference`:
the commands that make, load and check models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from elcrec import ElcrecError
from elcrec.cli.common import full_settings, settings_argument


def _train(args: argparse.Namespace) -> None:
    from elcrec.data.sequences import MIN_LENGTH, SequenceData
    from elcrec.fileio import file_digest
    from elcrec.models.registry import model_class
    from elcrec.training import run

    settings = full_settings(args.model, settings_argument(args.settings))
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

    settings = full_settings(args.model, settings_argument(args.settings))
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
    settings = full_settings(
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


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add this module's commands; `command(name, help)` makes a subcommand's parser."""
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

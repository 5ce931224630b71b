"""`elcrec download` and `elcrec sequences`: the data stage's commands."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from elcrec import ElcrecError


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


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add this module's commands; `command(name, help)` makes a subcommand's parser."""
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

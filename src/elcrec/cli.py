"""`elcrec <command>`: the entry points the workflow rules call (and people may call by hand)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

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
    print(f"{record['name']}: {record['verification']} (sha256 {record['sha256']})", file=sys.stderr)


def _sequences(args: argparse.Namespace) -> None:
    from elcrec.data.preprocess import build_sequences
    from elcrec.data.readers import read_interactions
    from elcrec.data.sequences import SequenceData, dataset_stats
    from elcrec.fileio import atomic_path, write_json_atomic

    spec = json.loads(args.spec)
    records = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.records or []]
    if spec["format"] == "sequences":
        if len(args.inputs) != 1:
            raise ElcrecError(f"dataset {spec['name']}: the 'sequences' format takes one file, got {len(args.inputs)}")
        SequenceData.load(args.inputs[0])  # validates the format before it becomes the sequence file
        with atomic_path(args.output) as temporary:
            shutil.copyfile(args.inputs[0], temporary)
        steps = None
    else:
        interactions = read_interactions(spec["format"], args.inputs, spec.get("reader"))
        sequences, steps = build_sequences(interactions, spec.get("preprocessing", {}))
        SequenceData.from_sequences(sequences).save(args.output)
    stats = dataset_stats(args.output, records, steps, spec)
    write_json_atomic(args.stats, stats)
    print(
        f"{spec['name']}: {stats['users']} users, {stats['items']} items, {stats['interactions']} interactions",
        file=sys.stderr,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elcrec", description=__doc__)
    parser.add_argument("--version", action="version", version=f"elcrec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="fetch one source file, verified by checksum")
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

    sequences = commands.add_parser("sequences", help="raw files -> sequence file + stats")
    sequences.add_argument("--spec", required=True, help="the resolved dataset recipe as JSON")
    sequences.add_argument("--inputs", nargs="+", required=True, help="the verified raw files")
    sequences.add_argument("--records", nargs="*", help="their provenance records (JSON)")
    sequences.add_argument("--output", required=True, help="sequence file to write")
    sequences.add_argument("--stats", required=True, help="stats JSON to write")
    sequences.set_defaults(handler=_sequences)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except ElcrecError as error:
        print(f"elcrec {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0

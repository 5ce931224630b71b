"""`elcrec <command>`: the entry points the workflow rules call (and people may call by hand)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from elcrec import ElcrecError, __version__
from elcrec.cli import data, measure, results, runs


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

    for module in (data, runs, measure, results):
        module.register(command)
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

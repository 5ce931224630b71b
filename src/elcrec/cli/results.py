"""`elcrec analyse` and `elcrec report`: run directories -> tables -> the report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from elcrec import ElcrecError


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


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add this module's commands; `command(name, help)` makes a subcommand's parser."""
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

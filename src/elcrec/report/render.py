"""results/tables + figures -> results/report/report.html (self-contained) and report.md (Jinja2).

The templates live in reports/templates/. Rendering is strict: an undefined template variable
is an error, never an empty string. Every number the HTML shows links either to the runs that
produced it (`#prov-<cell>`) or, for the paper's own values, to where they were transcribed.
"""

from __future__ import annotations

import base64
import math
import os
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import markupsafe
import pandas as pd

from elcrec import ElcrecError
from elcrec.fileio import write_text_atomic
from elcrec.report import figures as figure_module
from elcrec.report import tables as table_module
from elcrec.report.claims import VERDICTS

TEMPLATES = Path(__file__).resolve().parents[3] / "reports" / "templates"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def number(value, digits: int = 4) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, str):
        return value
    return f"{float(value):.{digits}f}"


def pvalue(value) -> str:
    return "n/a" if _missing(value) else f"{float(value):.2e}"


def percent(value, digits: int = 2) -> str:
    return "–" if _missing(value) else f"{float(value):+.{digits}f}%"


def amount(value, unit=None, digits: int = 2, html: bool = False) -> str:
    """A claim's number with its unit (config/claims.yaml): "8.90 %", "0.94 of the cells" (a
    fraction); `html`: escaped, the number kept on one line with its unit's first word."""
    if _missing(value):
        return "–"
    if _missing(unit) or not unit:
        return number(value, digits)
    if html:
        return markupsafe.Markup("{}&nbsp;{}").format(number(value, digits), unit)
    return f"{number(value, digits)} {unit}"


def breakable_path(value) -> markupsafe.Markup:
    """A path that a narrow table cell may wrap after each "/" (never inside a name), escaped."""
    return markupsafe.Markup("/<wbr>").join(markupsafe.escape(str(value)).split("/"))


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {key: (None if _missing(value) else value) for key, value in row.items()} for row in frame.to_dict("records")
    ]


def _released(released: pd.DataFrame, dataset: str) -> dict:
    """The released checkpoint's row of one dataset and how the paper's ELCRec row relates to it,
    decided from the numbers."""
    rows = released[released["dataset"] == dataset].set_index("metric").reindex(table_module.METRICS).reset_index()
    cells = _records(rows)
    evaluated = [cell for cell in cells if cell["status"] == "ok"]
    if not evaluated:
        relation = (
            "No released checkpoint was evaluated for this dataset (rule reference evaluates one where the "
            "dataset's paper route names it)."
        )
    elif all(cell["equals_paper"] for cell in evaluated) and len(evaluated) == len(cells):
        relation = (
            "The paper's ELCRec row equals this released checkpoint's test metrics on all four metrics (to the "
            "printed 4 decimals): it is the result of this single released model, although the paper's appendix "
            "describes its numbers as means over three seeds."
        )
    else:
        differing = [
            f"{cell['metric']} (paper {number(cell['paper'])}, released {number(cell['released'])})"
            for cell in evaluated
            if not cell["equals_paper"]
        ]
        relation = "The paper's ELCRec row differs from the released checkpoint in " + ", ".join(differing) + "."
    return {"metrics": cells, "evaluated": bool(evaluated), "relation": relation}


def _columns(rows: pd.DataFrame) -> list[dict]:
    """A table's columns (Table 1's, the cross-entropy section's) in their order, each with its
    first cell's source, status and run cell, and its four metrics."""
    columns = []
    for name in dict.fromkeys(rows["column"]):
        metrics = _records(rows[rows["column"] == name].set_index("metric").reindex(table_module.METRICS).reset_index())
        first = metrics[0]
        columns.append(
            {
                "column": name,
                "source": first.get("source"),
                "status": first["status"],
                "cell": first["cell"],
                "metrics": metrics,
            }
        )
    return columns


def _table1_blocks(table1: pd.DataFrame, tests: pd.DataFrame, released: pd.DataFrame) -> list[dict]:
    blocks = []
    for dataset in table_module.TABLE1_DATASETS:
        blocks.append(
            {
                "dataset": dataset,
                "columns": _columns(table1[table1["dataset"] == dataset]),
                "tests": _records(tests[tests["dataset"] == dataset]),
                "released": _released(released, dataset),
            }
        )
    return blocks


def _cell_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict]:
    """One row per run cell: `columns` from its first record, and each metric's record in METRICS order."""
    rows = []
    for cell, group in frame.groupby("cell", sort=True):
        first = group.iloc[0]
        by_metric = {row["metric"]: row for row in _records(group)}
        metrics = [by_metric.get(metric, {}) for metric in table_module.METRICS]
        rows.append({"cell": cell} | {column: first[column] for column in columns} | {"metrics": metrics})
    return rows


def _masking(masking: pd.DataFrame) -> list[dict]:
    """One row per (dataset, model, variant) with both maskings of each metric."""
    return _cell_rows(masking, ("dataset", "model", "variant"))


def _departures(departures: pd.DataFrame) -> list[dict]:
    """One row per departing run cell, each metric as (ours with it, ours official, the paper)."""
    return _cell_rows(departures, ("official_cell", "dataset", "model", "variant", "official_variant"))


def _provenance(runs: pd.DataFrame) -> list[dict]:
    cells = []
    for cell, group in runs.groupby("cell", sort=True):
        first = group.iloc[0]
        cells.append(
            {
                "cell": cell,
                "dataset": first["dataset"],
                "model": first["model"],
                "variant": first["variant"],
                "runs": _records(group.sort_values("seed")),
            }
        )
    return cells


def _summary(tables: dict[str, pd.DataFrame]) -> dict:
    compared = []
    for row in _records(tables["table1"]):
        if row["status"] == "ok" and row.get("paper") is not None:
            compared.append((f"Table 1 {row['dataset']} {row['column']} {row['metric']}", row))
    for row in _records(tables["table10"]):
        if row["status"] == "ok":
            compared.append((f"Table 10 {row['dataset']} {row['variant']}", row))
    for name in table_module.DOMAIN_TABLES:
        for row in _records(tables[name]):
            for model in ("iclrec", "elcrec"):
                if row.get(f"{model}_mean") is not None:
                    compared.append(
                        (
                            f"Table {name.removeprefix('table')} {row['dataset']} {model} {row['metric']}",
                            {
                                "flag": row.get(f"{model}_flag"),
                                "cell": row[f"cell_{model}"],
                                "relative_pct": row.get(f"{model}_relative_pct"),
                            },
                        )
                    )
    flagged = [
        {"label": label, "cell": row["cell"], "relative_pct": row.get("relative_pct")}
        for label, row in compared
        if row.get("flag")
    ]
    # every dataset with runs-worth of data, the four benchmarks, ML-1M and MIND-small alike
    other_data = [row for row in _records(tables["data_origin"]) if row["differs"]]
    return {
        "other_data": other_data,
        "compared": len(compared),
        "within": len(compared) - len(flagged),
        "flagged": flagged,
        "runs": len(tables["runs"]),
        "foreign_runs": len(tables["foreign"]),
        "grid_configs": _grid_configs(tables.get("analysis")),
        **_without_results(tables["missing"], tables["runs"]),
    }


def _grid_configs(analysis: pd.DataFrame | None) -> str:
    """The config files whose grid had finished when the tables were made ("" for `rerender`)."""
    if analysis is None or not len(analysis) or _missing(analysis["grid_configs"].iloc[0]):
        return ""
    return str(analysis["grid_configs"].iloc[0])


def _without_results(missing: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """How many runs the report's tables need have no results (missing) or wait for a model (pending),
    for which seeds, and which of their datasets have no run at all here."""
    if not len(missing):
        return {"missing_runs": 0, "pending_runs": 0, "seeds": [], "unrun_datasets": [], "missing_on_unrun": 0}
    absent = missing[missing["status"] == "missing"]
    with_runs = set(runs["dataset"]) if "dataset" in runs else set()
    unrun = sorted(set(absent["dataset"]) - with_runs)
    return {
        "missing_runs": len(absent),
        "pending_runs": int((missing["status"] == "pending").sum()),
        "seeds": sorted({int(seed) for seed in missing["seed"]}),
        "unrun_datasets": unrun,
        "missing_on_unrun": int(absent["dataset"].isin(unrun).sum()),
    }


def _missing_by_table(missing: pd.DataFrame) -> dict[str, dict]:
    grouped: dict[str, dict] = {}
    for row in _records(missing):
        entry = grouped.setdefault(row["table"], {"missing": [], "pending": set()})
        if row["status"] == "missing":
            entry["missing"].append(row["target"])
        else:
            entry["pending"].add(row["model"])
    return {
        table: {"missing": entry["missing"], "pending": sorted(entry["pending"])} for table, entry in grouped.items()
    }


def _beyond(tables: dict[str, pd.DataFrame]) -> dict:
    """The cross-entropy section: per benchmark one row per column (the paper's ELCRec first), its
    comparisons and its two verdicts."""
    table = tables["strong_baselines"]
    blocks = [
        {"dataset": dataset, "columns": _columns(table[table["dataset"] == dataset])}
        for dataset in table_module.TABLE1_DATASETS
    ]
    tests = _records(tables["strong_baseline_tests"])
    return {"blocks": blocks, "tests": tests, "claims": _claims(tables["beyond_claims"])}


def _claims(claims: pd.DataFrame) -> dict:
    """The claims in the paper's order, and how many of each verdict."""
    rows = _records(claims)
    counts = {verdict: sum(row["verdict"] == verdict for row in rows) for verdict in VERDICTS}
    return {"rows": rows, "counts": counts}


def _data_uri(path: Path | None) -> str | None:
    if path is None:
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _generated() -> str:
    """The render time, or SOURCE_DATE_EPOCH's (the reproducible-builds convention), so two renders
    of the same tables can be byte-identical."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def context(tables: dict[str, pd.DataFrame], figure_paths: dict[str, Path | None], out_dir: Path) -> dict:
    absent = [name for name in table_module.TABLE_NAMES if name not in tables]
    if absent:
        raise ElcrecError(f"tables missing from the tables folder: {absent} (run `elcrec analyse` first)")
    return {
        "generated": _generated(),
        "summary": _summary(tables),
        "table1": _table1_blocks(tables["table1"], tables["table1_tests"], tables["released"]),
        "table10": _records(tables["table10"]),
        "table8": _records(tables["table8"]),
        "table9": _records(tables["table9"]),
        "efficiency": _records(tables["efficiency"]),
        "scale": _records(tables["scale"]) if "scale" in tables else [],
        "table6": _records(tables["table6"]),
        "table7": _records(tables["table7"]),
        "masking": _masking(tables["masking"]),
        "departures": _departures(tables["departures"]),
        "missing": _missing_by_table(tables["missing"]),
        "claims": _claims(tables["claims"]),
        "beyond": _beyond(tables),
        "diverged": _records(tables["diverged"]),
        "foreign": _records(tables["foreign"]),
        "official": _records(tables["official"]),
        "provenance": _provenance(tables["runs"]),
        "figures": {
            name: {"uri": _data_uri(path), "file": path.relative_to(out_dir).as_posix() if path else None}
            for name, path in figure_paths.items()
        },
    }


def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    if not templates.is_dir():
        raise ElcrecError(f"report templates not found: {templates}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),  # report.html.j2: escaped; .md.j2 not
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {"num": number, "pval": pvalue, "pct": percent, "amount": amount, "path": breakable_path}
    return env


def render(tables_dir: str | Path, out_dir: str | Path, templates: Path = TEMPLATES) -> dict[str, Path]:
    """Draws the figures and writes report.html and report.md into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    tables = table_module.read(tables_dir)
    figure_paths = figure_module.draw_all(tables, out_dir / "figures") if "table10" in tables else {}
    values = context(tables, figure_paths, out_dir)
    env = environment(templates)
    values["stylesheet"] = (templates / "style.css").read_text(encoding="utf-8")
    written = {}
    for name in ("report.html", "report.md"):
        write_text_atomic(out_dir / name, env.get_template(f"{name}.j2").render(**values))
        written[name] = out_dir / name
    return written

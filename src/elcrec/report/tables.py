"""The paper's tables from run directories and dataset statistics -> results/tables/*.csv.

Every number the report prints comes from one of these files, and every number cell carries a
`cell` id that `runs.csv` resolves to its run directories (the report's provenance links).
A table whose runs are absent still gets its rows, with `status` saying `missing` (configured
model, no run yet: `missing.csv` names the target to build) or `pending` (model not
implemented yet), so nothing silently disappears.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from elcrec import RUN_DIR, official, stats
from elcrec.report import beyond, claims, datasets, evidence
from elcrec.report.records import DIVERGED_COLUMNS, METRICS, current_digests, foreign_runs, run_records
from elcrec.stats import cell_id

TABLE1_DATASETS = datasets.BENCHMARKS
ABLATION_VARIANTS = ["B", "B+ICL", "B+ELCM", "ELCRec"]
DOMAIN_TABLES = {"table8": "ml-1m", "table9": "mind-small"}
EFFICIENCY_COLUMNS = ["S3-Rec", "ICLRec", "ELCRec"]
# Table 1 columns of ours beyond the paper's: the popularity floor (config `experiments.table1`),
# shown first, compared with no paper value and left out of the ranking and the significance tests
OUR_COLUMNS = {"Pop": ("pop", "default")}
COST_VARIANT = "cost"  # the cost experiment's runs: a fixed epoch count, trained alone (config `experiments.cost`)
# the files `build` writes (results/tables/{name}.csv), in the order the report reads them
TABLE_NAMES = [
    "runs",
    "table1",
    "table1_tests",
    "table10",
    "table8",
    "table9",
    "efficiency",
    "table6",
    "table7",
    "data_origin",
    "convergence",
    "sensitivity",
    "masking",
    "departures",
    "tsne",
    "missing",
    "released",
    "diverged",
    "foreign",
    "official",
    "claims",
    "strong_baselines",
    "strong_baseline_tests",
    "beyond_claims",
    "analysis",
]
# one row of table1_tests.csv: best vs runner-up of one dataset and metric
TEST_COLUMNS = [
    "dataset",
    "metric",
    "paper_improvement",
    "paper_p_value",
    "paper_method",
    "paper_baseline",
    "status",
    "best",
    "runner_up",
    "best_cell",
    "runner_up_cell",
    "best_mean",
    "runner_up_mean",
    "improvement_pct",
    "seeds_best",
    "seeds_runner_up",
    "student_p",
    "welch_p",
    "wilcoxon",
    "paired_t",
]
RUN_TARGET = f"{RUN_DIR}/metrics.json"


def _column_source(paper: dict, name: str) -> str:
    for source, names in paper.get("column_sources", {}).items():
        if name in names:
            return source
    return "unknown"


def _status(
    cells: pd.DataFrame, key: tuple[str, str, str], registered: set[str], diverged: set[tuple[str, str, str]]
) -> str:
    """A cell's status: ok, pending (model not implemented), diverged (its runs' losses turned
    non-finite: present, no metrics) or missing."""
    _, model, variant = key
    if model not in registered:
        return "pending"
    present = (cells["model"] == model) & (cells["variant"] == variant)
    if present.any():
        return "ok"
    return "diverged" if key in diverged else "missing"


def _cell_row(dataset: str, column: str, model: str, variant: str, metric: str, source: str, paper, note) -> dict:
    """The identity of one Table 1 cell (ours beside the paper's, or ours alone)."""
    return {
        "dataset": dataset,
        "column": column,
        "model": model,
        "variant": variant,
        "metric": metric,
        "source": source,
        "paper": paper,
        "cell": cell_id(dataset, model, variant),
        "note": note,
    }


CELL_NOTE = re.compile(r"Table 1 (\w+)/([^/\s]+)/([A-Z]+@\d+)")


def cell_notes(paper: dict) -> dict[tuple[str, str, str], str]:
    """The transcription's notes that name one Table 1 cell (typos, version differences)."""
    notes = {}
    for note in paper.get("notes", []):
        for match in CELL_NOTE.finditer(note):
            notes[match.groups()] = note
    return notes


def _published(value) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def table1(
    runs: pd.DataFrame,
    tidy: pd.DataFrame,
    paper: dict,
    registered: set[str],
    tolerance_pct: float,
    diverged: set[tuple[str, str, str]] = frozenset(),
):
    """Table 1 cells (ours beside the paper's) and one significance row per dataset and metric."""
    cells = stats.aggregate(tidy[tidy["split"] == "test"]) if len(tidy) else _empty_cells()
    names = {tuple(run): name for name, run in paper["run_names"].items() if name in paper["table1_columns"]}
    keep = [(m, v) in names for m, v in zip(cells["model"], cells["variant"], strict=True)]
    in_table = cells[pd.Series(keep, index=cells.index, dtype=bool)]
    ranked = stats.rank_cells(in_table) if len(in_table) else in_table.assign(rank=[], runner_up_mean=[])
    rows, tests = [], []
    notes = cell_notes(paper)
    for dataset in TABLE1_DATASETS:
        mine = ranked[ranked["dataset"] == dataset]
        rows += _our_columns(cells[cells["dataset"] == dataset], dataset, registered, diverged)
        for name in paper["table1_columns"]:
            model, variant = paper["run_names"][name]
            for metric in METRICS:
                published = _published(paper["table1"][dataset][name][metric])
                source, note = _column_source(paper, name), notes.get((dataset, name, metric))
                row = _cell_row(dataset, name, model, variant, metric, source, published, note)
                match = mine[(mine["model"] == model) & (mine["variant"] == variant) & (mine["metric"] == metric)]
                if len(match):
                    cell = match.iloc[0]
                    row |= _comparison(cell, published, tolerance_pct) | {"rank": int(cell["rank"]), "status": "ok"}
                else:
                    row |= {"status": _status(mine, (dataset, model, variant), registered, diverged)}
                rows.append(row)
        for metric in METRICS:
            tests.append(_best_vs_runner_up(mine[mine["metric"] == metric], runs, dataset, metric, names, paper))
    table = pd.DataFrame(rows)
    tests = pd.DataFrame(tests).reindex(columns=TEST_COLUMNS)
    for test in ("wilcoxon", "paired_t"):
        tests[f"{test}_holm"] = stats.holm([None if pd.isna(p) else p for p in tests[test]])
    return table, tests


def _our_columns(
    cells: pd.DataFrame, dataset: str, registered: set[str], diverged: set[tuple[str, str, str]]
) -> list[dict]:
    """The rows of OUR_COLUMNS for one dataset: ours only (no paper value, no rank, never flagged)."""
    rows = []
    for name, (model, variant) in OUR_COLUMNS.items():
        for metric in METRICS:
            row = _cell_row(dataset, name, model, variant, metric, "ours", None, None)
            match = cells[(cells["model"] == model) & (cells["variant"] == variant) & (cells["metric"] == metric)]
            if len(match):
                cell = match.iloc[0]
                row |= {"mean": float(cell["mean"]), "std": float(cell["std"]), "seeds": int(cell["seeds"])}
                row |= {"flag": False, "status": "ok"}
            else:
                row["status"] = _status(cells, (dataset, model, variant), registered, diverged)
            rows.append(row)
    return rows


IMPROVEMENT = re.compile(r"^\s*([0-9.]+)%\s*(up|down)\s*$")
PROPOSED = "ELCRec"


def _paper_pair(paper: dict, dataset: str, metric: str) -> tuple[str, str | None]:
    """The two columns the paper's improvement and p-value compare: ELCRec and the baseline whose
    value the printed improvement (E - v) / v comes from, the nearest match among the columns.

    Not simply the strongest baseline: a printed typo can outrank it (Sports Caser NDCG@20 is
    printed 0.178 for 0.0178), while the improvement (2.14%) still points at the real runner-up."""
    values = {name: _published(paper["table1"][dataset][name][metric]) for name in paper["table1_columns"]}
    ours = values.pop(PROPOSED)
    others = {name: value for name, value in values.items() if value}
    printed = IMPROVEMENT.match(str(paper["table1"][dataset]["_improvement"][metric]))
    if ours is None or not others:
        return PROPOSED, None
    if printed is None:  # no improvement to match: the strongest baseline
        return PROPOSED, max(others, key=others.get)
    target = float(printed.group(1)) * (1 if printed.group(2) == "up" else -1)
    return PROPOSED, min(others, key=lambda name: abs(100 * (ours - others[name]) / others[name] - target))


def _empty_cells() -> pd.DataFrame:
    return pd.DataFrame(columns=[*stats.CELL, "mean", "std", "seeds"])


def _comparison(cell: pd.Series, published: float | None, tolerance_pct: float) -> dict:
    row = {"mean": float(cell["mean"]), "std": float(cell["std"]), "seeds": int(cell["seeds"])}
    return row | stats.compare_with_paper(row["mean"], row["std"], row["seeds"], published, tolerance_pct)


def _seed_values(runs: pd.DataFrame, dataset: str, model: str, variant: str, metric: str) -> np.ndarray:
    mask = (runs["dataset"] == dataset) & (runs["model"] == model) & (runs["variant"] == variant)
    return runs.loc[mask, f"test_{metric}"].astype(float).to_numpy()


def _best_vs_runner_up(group: pd.DataFrame, runs: pd.DataFrame, dataset: str, metric: str, names: dict, paper: dict):
    paper_method, paper_baseline = _paper_pair(paper, dataset, metric)
    row = {
        "dataset": dataset,
        "metric": metric,
        "paper_improvement": paper["table1"][dataset]["_improvement"][metric],
        "paper_p_value": str(paper["table1"][dataset]["_p_value"][metric]),
        "paper_method": paper_method,
        "paper_baseline": paper_baseline,
    }
    means = group.sort_values("mean", ascending=False)
    if means["mean"].nunique() < 2:
        return row | {"status": "fewer than two reproduced columns"}
    best = means.iloc[0]
    runner = means[means["mean"] < best["mean"]].iloc[0]
    pair = [(best["model"], best["variant"]), (runner["model"], runner["variant"])]
    first, second = (_seed_values(runs, dataset, m, v, metric) for m, v in pair)
    dirs = [
        runs.loc[(runs["dataset"] == dataset) & (runs["model"] == m) & (runs["variant"] == v), "run_dir"].tolist()
        for m, v in pair
    ]
    paired = stats.paired_user_tests(*(stats.seed_averaged_user_metric(d, metric) for d in dirs))
    return row | {
        "status": "ok",
        "best": names[pair[0]],
        "runner_up": names[pair[1]],
        "best_cell": cell_id(dataset, *pair[0]),
        "runner_up_cell": cell_id(dataset, *pair[1]),
        "best_mean": float(best["mean"]),
        "runner_up_mean": float(runner["mean"]),
        "improvement_pct": 100.0 * (best["mean"] - runner["mean"]) / runner["mean"] if runner["mean"] else None,
        "seeds_best": len(first),
        "seeds_runner_up": len(second),
        "student_p": stats.seed_test(first, second),
        "welch_p": stats.seed_test(first, second, welch=True),
        "wilcoxon": paired["wilcoxon"],
        "paired_t": paired["paired_t"],
    }


def ablation(runs: pd.DataFrame, paper: dict, tolerance_pct: float = 5.0) -> pd.DataFrame:
    """Table 10: per run the sum HR@5 + HR@20 + NDCG@5 + NDCG@20, then mean and std over seeds."""
    rows = []
    for dataset in TABLE1_DATASETS:
        for variant in ABLATION_VARIANTS:
            mine = runs[(runs["dataset"] == dataset) & (runs["model"] == "elcrec") & (runs["variant"] == variant)]
            sums = mine[[f"test_{metric}" for metric in METRICS]].astype(float).sum(axis=1)
            row = {
                "dataset": dataset,
                "variant": variant,
                "paper": paper["table10_ablation"][dataset][variant],
                "cell": cell_id(dataset, "elcrec", variant),
                "status": "ok" if len(sums) else "missing",
            }
            if len(sums):
                row |= {
                    "mean": float(sums.mean()),
                    "std": float(sums.std(ddof=1)) if len(sums) > 1 else float("nan"),
                    "seeds": len(sums),
                }
                row |= stats.compare_with_paper(row["mean"], row["std"], row["seeds"], row["paper"], tolerance_pct)
            rows.append(row)
    return pd.DataFrame(rows)


def domains(runs: pd.DataFrame, paper: dict, table: str, tolerance_pct: float = 5.0) -> pd.DataFrame:
    """Tables 8 and 9: ICLRec vs ELCRec on ML-1M / MIND-small, our improvement and seed t-test."""
    dataset, published = DOMAIN_TABLES[table], paper[f"{table}_{'ml1m' if table == 'table8' else 'mind_small'}"]
    rows = []
    for metric in METRICS:
        row = {
            "dataset": dataset,
            "metric": metric,
            "paper_iclrec": published["ICLRec"][metric],
            "paper_elcrec": published["ELCRec"][metric],
            "paper_improvement": published["improvement"][metric],
            "paper_p_value": str(published["p_value"][metric]),
        }
        values = {}
        for name in ("ICLRec", "ELCRec"):
            model, variant = paper["run_names"][name]
            values[name] = _seed_values(runs, dataset, model, variant, metric)
            row[f"cell_{name.lower()}"] = cell_id(dataset, model, variant)
            if len(values[name]):
                row[f"{name.lower()}_mean"] = float(values[name].mean())
                row[f"{name.lower()}_std"] = float(values[name].std(ddof=1)) if len(values[name]) > 1 else float("nan")
                row[f"{name.lower()}_seeds"] = len(values[name])
                compared = stats.compare_with_paper(
                    row[f"{name.lower()}_mean"],
                    row[f"{name.lower()}_std"],
                    len(values[name]),
                    row[f"paper_{name.lower()}"],
                    tolerance_pct,
                )
                row[f"{name.lower()}_flag"] = compared["flag"]
                row[f"{name.lower()}_relative_pct"] = compared["relative_pct"]
        if len(values["ICLRec"]) and len(values["ELCRec"]):
            base = values["ICLRec"].mean()
            row["improvement_pct"] = 100.0 * (values["ELCRec"].mean() - base) / base if base else None
            row["student_p"] = stats.seed_test(values["ELCRec"], values["ICLRec"])
            row["status"] = "ok"
        else:
            row["status"] = "missing"
        rows.append(row)
    return pd.DataFrame(rows)


def efficiency(runs: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """Tables 2 and 11: training time and memory of S3-Rec, ICLRec and ELCRec (their `cost` runs:
    the same fixed epoch count, each alone on the machine), ours beside the paper's."""
    published = paper["table2_efficiency"]
    rows = []
    for dataset in TABLE1_DATASETS:
        for name in EFFICIENCY_COLUMNS:
            model, variant = paper["run_names"][name][0], COST_VARIANT
            mine = runs[(runs["dataset"] == dataset) & (runs["model"] == model) & (runs["variant"] == variant)]
            row = {
                "dataset": dataset,
                "column": name,
                "cell": cell_id(dataset, model, variant),
                "paper_time_s": published["time_s"][name][dataset],
                "paper_memory_mb": published["memory_mb"][name][dataset],
                "status": "ok" if len(mine) else "missing",
            }
            if len(mine):
                row |= _cost_of(mine)
            rows.append(row)
    return pd.DataFrame(rows)


def _cost_of(runs: pd.DataFrame) -> dict:
    """A cost run's time and memory; for a model with a pre-training stage (S3-Rec), both stages:
    the time together and each alone, the mean memory weighted by each stage's time, the larger peak."""
    fine_tuning = float(runs["training_seconds"].mean())
    cost = {
        "training_seconds": fine_tuning,
        "fine_tuning_seconds": None,
        "pretraining_seconds": None,
        "seconds_per_epoch": float(runs["seconds_per_epoch"].mean()),
        "epochs_run": float(runs["epochs_run"].mean()),
        "peak_memory_mb": float(runs["peak_memory_mb"].mean()),
        "mean_memory_mb": float(runs["mean_memory_mb"].mean()),
        "memory_kind": runs["peak_memory_kind"].iloc[0],
        "device": runs["device"].iloc[0],
        "seeds": len(runs),
    }
    pretraining = runs["pretraining_seconds"].dropna()
    if len(pretraining):
        before = float(pretraining.mean())
        total = before + fine_tuning
        cost |= {
            "training_seconds": total,
            "fine_tuning_seconds": fine_tuning,
            "pretraining_seconds": before,
            "peak_memory_mb": max(cost["peak_memory_mb"], float(runs["pretraining_peak_memory_mb"].mean())),
            "mean_memory_mb": (
                float(runs["pretraining_mean_memory_mb"].mean()) * before + cost["mean_memory_mb"] * fine_tuning
            )
            / total
            if total
            else cost["mean_memory_mb"],
        }
    return cost


def missing_runs(tables: dict[str, pd.DataFrame], seeds: list[int], registered: set[str]) -> pd.DataFrame:
    """Which runs each table still lacks, with the Snakemake target that makes them."""
    wanted = []
    for row in tables["table1"].to_dict("records"):
        wanted.append(("Table 1", row["dataset"], row["model"], row["variant"]))
    for row in tables["table10"].to_dict("records"):
        wanted.append(("Table 10", row["dataset"], "elcrec", row["variant"]))
    for table, dataset in DOMAIN_TABLES.items():
        for model, variant in (("iclrec", "default"), ("elcrec", "ELCRec")):
            wanted.append((f"Table {table.removeprefix('table')}", dataset, model, variant))
    wanted += beyond.wanted_runs()
    runs = tables["runs"]
    present = set(zip(runs["dataset"], runs["model"], runs["variant"], runs["seed"], strict=True))
    rows = []
    for table, dataset, model, variant in dict.fromkeys(wanted):
        for seed in seeds:
            if (dataset, model, variant, seed) in present:
                continue
            status = "missing" if model in registered else "pending"
            target = RUN_TARGET.format(dataset=dataset, model=model, variant=variant, seed=seed)
            rows.append(
                {
                    "table": table,
                    "dataset": dataset,
                    "model": model,
                    "variant": variant,
                    "seed": seed,
                    "status": status,
                    "target": target if status == "missing" else "",
                }
            )
    return pd.DataFrame(rows, columns=["table", "dataset", "model", "variant", "seed", "status", "target"])


RELEASED_COLUMNS = ["dataset", "metric", "paper", "released", "status", "equals_paper", "ours_mean", "ours_seeds"]
PRINTED_DIGITS = 4  # the paper prints 4 decimals


def released_checkpoints(reference_root: str | Path, table1: pd.DataFrame) -> pd.DataFrame:
    """The authors' released ELCRec checkpoints (rule `reference`: results/reference/{dataset}/
    metrics.json) beside the paper's ELCRec row and our ELCRec runs, and whether the paper's number is
    the released model's, printed to 4 decimals."""
    rows = []
    elcrec = table1[table1["column"] == "ELCRec"]
    for dataset in TABLE1_DATASETS:
        path = Path(reference_root) / dataset / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8"))["metrics"] if path.is_file() else None
        for metric in METRICS:
            ours = elcrec[(elcrec["dataset"] == dataset) & (elcrec["metric"] == metric)]
            paper = float(ours["paper"].iloc[0]) if len(ours) and pd.notna(ours["paper"].iloc[0]) else None
            row = {"dataset": dataset, "metric": metric, "paper": paper, "status": "missing"}
            if len(ours) and ours["status"].iloc[0] == "ok":
                row |= {"ours_mean": float(ours["mean"].iloc[0]), "ours_seeds": int(ours["seeds"].iloc[0])}
            if metrics is not None:
                released = float(metrics[metric])
                equal = paper is not None and round(released, PRINTED_DIGITS) == round(paper, PRINTED_DIGITS)
                row |= {"released": released, "status": "ok", "equals_paper": equal}
            rows.append(row)
    return pd.DataFrame(rows, columns=RELEASED_COLUMNS)


def build(
    runs_root: str | Path,
    sequences_dir: str | Path,
    paper: dict,
    seeds: list[int] | None,
    registered: set[str],
    tolerance_pct: float = 5.0,
    paper_claims: list[dict] | None = None,
    reference_root: str | Path | None = None,
    beyond_claims: list[dict] | None = None,
    official_root: str | Path | None = None,
    grid_configs: list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table from the run directories. `seeds` None: the seeds the runs have, so tables
    re-made from whatever runs exist need no word of the config that trained them. `paper_claims`
    and `beyond_claims` (config/claims.yaml) are checked against the tables last. `grid_configs`:
    the config files whose grid had every run finished before this analysis (rule analyse), so a
    run the tables need without results is outside that grid; None: the runs as found (rerender)."""
    every_run = run_records(runs_root)
    foreign = foreign_runs(every_run, current_digests(sequences_dir))
    every_run = every_run[~every_run["run_dir"].isin(foreign["run_dir"])]
    if seeds is None:
        seeds = sorted({int(seed) for seed in every_run["seed"]}) if len(every_run) else []
    # diverged runs have no metrics: present (never "missing"), listed with their divergence, and
    # kept out of every number
    runs = every_run[every_run["status"] == "ok"]
    diverged = every_run[every_run["status"] == "diverged"]
    tidy = stats.collect_runs(runs_root)
    tidy = tidy[~tidy["run_dir"].isin(foreign["run_dir"])] if len(tidy) else tidy
    tables = {"runs": every_run, "diverged": diverged[DIVERGED_COLUMNS], "foreign": foreign}
    diverged_cells = set(zip(diverged["dataset"], diverged["model"], diverged["variant"], strict=True))
    tables["table1"], tables["table1_tests"] = table1(runs, tidy, paper, registered, tolerance_pct, diverged_cells)
    tables["table10"] = ablation(runs, paper, tolerance_pct)
    for name in DOMAIN_TABLES:
        tables[name] = domains(runs, paper, name, tolerance_pct)
    tables["efficiency"] = efficiency(runs, paper)
    tables["table6"], tables["table7"] = datasets.statistics(sequences_dir, paper)
    tables["data_origin"] = datasets.data_origin(tables["table6"], tables["table7"], sequences_dir)
    tables["convergence"] = evidence.convergence(runs)
    tables["sensitivity"] = evidence.sensitivity(runs)
    tables["masking"] = evidence.masking(runs)
    skip = (COST_VARIANT, beyond.CE_VARIANT, *ABLATION_VARIANTS)  # the cost runs, beyond.py's and Table 10's
    tables["departures"] = evidence.departures(runs, tables["table1"], skip_variants=skip)
    tables["tsne"] = evidence.tsne(runs)
    tables["strong_baselines"] = beyond.table(runs, paper)
    tables["strong_baseline_tests"] = beyond.tests(runs)
    tables["missing"] = missing_runs(tables, seeds, registered)
    tables["released"] = released_checkpoints(reference_root or Path(runs_root).parent / "reference", tables["table1"])
    tables["official"] = official.table(official_root or Path(runs_root).parent / "official")
    tables["claims"] = claims.check(paper_claims or [], tables, tolerance_pct)
    tables["beyond_claims"] = claims.check(beyond_claims or [], tables, tolerance_pct)
    tables["analysis"] = pd.DataFrame([{"grid_configs": " + ".join(grid_configs or [])}])
    return tables


def write(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> None:
    from elcrec.fileio import write_text_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        write_text_atomic(out_dir / f"{name}.csv", frame.to_csv(index=False))


def read(tables_dir: str | Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for path in sorted(Path(tables_dir).glob("*.csv")):
        try:
            tables[path.stem] = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            tables[path.stem] = pd.DataFrame()
    return tables

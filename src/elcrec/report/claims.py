"""The paper's claims, checked one by one against our analysis tables.

Each claim of `config/claims.yaml` quotes the paper's sentence, names a rule below and the rule's
parameters (datasets, metrics, thresholds), and the unit of its numbers (a percentage or a
fraction, `unit_kind`). A rule reads only the tables of `tables.build` (results/tables) and
returns our value and one of three verdicts: the claim holds on our runs, it does not hold, or it
is not yet testable, with the runs that have no results yet (and the Snakemake targets that make
them) or the models still pending. No verdict is typed in anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from elcrec import ElcrecError

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not yet testable"
VERDICTS = (HOLDS, FAILS, UNTESTABLE)
BENCHMARKS = ["beauty", "sports", "toys", "yelp"]
METRICS = ["HR@5", "HR@20", "NDCG@5", "NDCG@20"]
PROPOSED = "ELCRec"
BASELINE_SOURCES = ("quoted", "rerun")  # paper.yaml column_sources: the twelve baselines
COLUMNS = ["id", "section", "kind", "sentence", "rule", "paper_value", "value", "unit", "verdict", "detail", "needs"]


@dataclass(frozen=True)
class Outcome:
    value: float | None
    verdict: str
    detail: str
    needs: list[str] = field(default_factory=list)  # what would make an untestable claim testable


Rule = Callable[[dict[str, pd.DataFrame], dict], Outcome]
RULES: dict[str, Rule] = {}


def rule(function: Rule) -> Rule:
    RULES[function.__name__] = function
    return function


def _table(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    if frame is None:
        raise ElcrecError(f"claims: the analysis table {name!r} is missing (run `elcrec analyse` first)")
    return frame


def _verdict(holds: bool) -> str:
    return HOLDS if holds else FAILS


MISSING_COLUMNS = ["table", "dataset", "model", "variant", "seed", "status", "target"]


def _untestable(reason: str, cells: pd.DataFrame, tables: dict[str, pd.DataFrame], table: str) -> Outcome:
    """Not yet testable: the runs these cells lack (their Snakemake targets) and the pending models,
    looked up in the analysis's table of missing runs."""
    missing = tables.get("missing")
    if missing is None or missing.empty:
        missing = pd.DataFrame(columns=MISSING_COLUMNS)
    keys = set(zip(cells["dataset"], cells["model"], cells["variant"], strict=True)) if len(cells) else set()
    wanted = [
        row_table == table and key in keys
        for row_table, key in zip(
            missing["table"], zip(missing["dataset"], missing["model"], missing["variant"], strict=True), strict=True
        )
    ]
    rows = missing.loc[pd.Series(wanted, index=missing.index, dtype=bool)]
    pending = sorted({f"{model} (not implemented yet)" for model in rows.loc[rows["status"] == "pending", "model"]})
    targets = sorted(target for target in rows["target"] if isinstance(target, str) and target)
    needed = "run it needs has" if len(targets) == 1 else "runs it needs have"
    detail = reason + (f"; {len(targets)} {needed} no results yet" if targets else "")
    detail += f"; pending: {', '.join(pending)}" if pending else ""
    return Outcome(None, UNTESTABLE, detail, pending + targets)


def _table1_cells(tables, params) -> tuple[pd.DataFrame, pd.DataFrame]:
    table1 = _table(tables, "table1")
    datasets, metrics = params.get("datasets", BENCHMARKS), params.get("metrics", METRICS)
    cells = table1[table1["dataset"].isin(datasets) & table1["metric"].isin(metrics)]
    cells = cells[cells["source"].isin((*BASELINE_SOURCES, "proposed"))]
    return cells, cells[cells["status"] != "ok"]


def _improvements_over_best_baseline(cells: pd.DataFrame) -> pd.Series:
    """Per (dataset, metric): (ELCRec - the best of the twelve baselines) / that best, in percent."""
    values = {}
    for (dataset, metric), group in cells.groupby(["dataset", "metric"], sort=True):
        ours = group.loc[group["column"] == PROPOSED, "mean"].astype(float)
        others = group.loc[group["source"].isin(BASELINE_SOURCES), "mean"].astype(float)
        if len(ours) and len(others):
            best = others.max()
            values[(dataset, metric)] = (ours.iloc[0] - best) / best * 100
    return pd.Series(values, dtype=float)


@rule
def mean_improvement_over_best_baseline(tables, params) -> Outcome:
    """The mean over datasets x metrics of ELCRec's relative gain over the best baseline (percent);
    holds when it is at least `at_least`. Every Table 1 column must have its runs."""
    cells, lacking = _table1_cells(tables, params)
    if len(lacking):
        return _untestable("Table 1 columns without runs", lacking, tables, "Table 1")
    gains = _improvements_over_best_baseline(cells)
    value = float(gains.mean())
    at_least = float(params.get("at_least", 0.0))
    worst = gains.idxmin()
    return Outcome(
        value,
        _verdict(value >= at_least),
        f"mean gain {value:.2f}% over {len(gains)} cells (needs >= {at_least:g}%); "
        f"smallest {gains.min():.2f}% ({worst[0]} {worst[1]})",
    )


@rule
def best_in_every_cell(tables, params) -> Outcome:
    """ELCRec's mean beats every column of `against` (default: all twelve baselines) in every
    (dataset, metric) cell."""
    cells, lacking = _table1_cells(tables, params)
    if "against" in params:
        keep = cells["column"].isin([*params["against"], PROPOSED])
        cells, lacking = cells[keep], lacking[lacking["column"].isin([*params["against"], PROPOSED])]
    if len(lacking):
        return _untestable("Table 1 columns without runs", lacking, tables, "Table 1")
    gains = _improvements_over_best_baseline(cells)
    wins = int((gains > 0).sum())
    lost = [f"{dataset} {metric}" for (dataset, metric), gain in gains.items() if gain <= 0]
    return Outcome(
        wins / len(gains),
        _verdict(wins == len(gains)),
        f"best in {wins} of {len(gains)} cells" + (f"; not in {', '.join(lost)}" if lost else ""),
    )


@rule
def significant_over_runner_up(tables, params) -> Outcome:
    """ELCRec is the best column and better than the runner-up with the paper's seed t-test
    p < `alpha` in at least `min_fraction` of the (dataset, metric) cells (default all); needs every
    column and at least two seeds."""
    cells, lacking = _table1_cells(tables, params)
    if len(lacking):
        return _untestable("Table 1 columns without runs", lacking, tables, "Table 1")
    tests = _table(tables, "table1_tests")
    datasets, metrics = params.get("datasets", BENCHMARKS), params.get("metrics", METRICS)
    tests = tests[tests["dataset"].isin(datasets) & tests["metric"].isin(metrics)]
    p_values = pd.to_numeric(tests["student_p"], errors="coerce")
    if p_values.isna().any() or (tests["status"] != "ok").any():
        return _untestable(
            "the seed t-test needs at least two seeds of the best and the runner-up", cells.iloc[:0], tables, "Table 1"
        )
    alpha = float(params.get("alpha", 0.05))
    significant = (tests["best"] == PROPOSED) & (p_values < alpha)
    return Outcome(
        float(significant.mean()),
        _verdict(float(significant.mean()) >= float(params.get("min_fraction", 1.0))),
        f"ELCRec best with p < {alpha:g} in {int(significant.sum())} of {len(tests)} cells; "
        f"largest p {p_values.max():.2g}",
    )


@rule
def saving_over(tables, params) -> Outcome:
    """The saving of each of `methods` (default ELCRec) over `baseline` in `quantity` of the cost runs
    (Tables 2 and 11), in percent. `aggregate: ratio_of_means` (the paper's way: 1 - mean(method) /
    mean(baseline) over the datasets) or `mean_of_ratios`; holds when at least `at_least`, and with
    `every_dataset` also on each dataset alone."""
    efficiency = _table(tables, "efficiency")
    datasets, baseline = params.get("datasets", BENCHMARKS), params["baseline"]
    methods, quantity = params.get("methods", [PROPOSED]), params["quantity"]
    rows = efficiency[efficiency["dataset"].isin(datasets) & efficiency["column"].isin((baseline, *methods))]
    lacking = rows[rows["status"] != "ok"]
    if len(lacking) or rows.empty:
        names = [
            f"{column} on {dataset}" for column, dataset in zip(lacking["column"], lacking["dataset"], strict=True)
        ]
        return Outcome(
            None,
            UNTESTABLE,
            f"cost runs without results: {', '.join(names) or 'all'}",
            [f"experiment `cost`: {n}" for n in names],
        )
    values = rows.pivot(index="dataset", columns="column", values=quantity).astype(float).reindex(datasets)
    at_least = float(params.get("at_least", 0.0))
    aggregate = params.get("aggregate", "ratio_of_means")
    savings, parts = {}, []
    for method in methods:
        per_dataset = (values[baseline] - values[method]) / values[baseline] * 100
        if aggregate == "ratio_of_means":
            savings[method] = float((1 - values[method].mean() / values[baseline].mean()) * 100)
        elif aggregate == "mean_of_ratios":
            savings[method] = float(per_dataset.mean())
        else:
            raise ElcrecError(f"claims: aggregate must be ratio_of_means or mean_of_ratios, got {aggregate!r}")
        holds = savings[method] >= at_least and (
            not params.get("every_dataset") or bool((per_dataset >= at_least).all())
        )
        parts.append((method, holds, per_dataset))
    value = min(savings.values())
    detail = "; ".join(
        f"{method} saves {savings[method]:.1f}% of {quantity} against {baseline} (per dataset "
        + ", ".join(f"{dataset} {saving:.1f}%" for dataset, saving in per_dataset.items())
        + ")"
        for method, _, per_dataset in parts
    )
    rule_text = f"needs >= {at_least:g}%" + (" on every dataset" if params.get("every_dataset") else "")
    return Outcome(value, _verdict(all(holds for _, holds, _ in parts)), f"{detail} ({rule_text})")


@rule
def ablation_order(tables, params) -> Outcome:
    """Table 10: the share of datasets on which every `[lower, higher]` pair of variants keeps its
    order; holds when at least `min_fraction` (default all)."""
    table10 = _table(tables, "table10")
    datasets = params.get("datasets", BENCHMARKS)
    rows = table10[table10["dataset"].isin(datasets)]
    lacking = rows[rows["status"] != "ok"]
    if len(lacking) or rows.empty:
        return _untestable("ablation variants without runs", lacking.assign(model="elcrec"), tables, "Table 10")
    kept, broken = 0, []
    for dataset in datasets:
        means = rows[rows["dataset"] == dataset].set_index("variant")["mean"].astype(float)
        here = [
            f"{lower} {means[lower]:.4f} >= {higher} {means[higher]:.4f}"
            for lower, higher in params["pairs"]
            if not means[lower] < means[higher]
        ]
        kept += not here
        broken += [f"{dataset}: {item}" for item in here]
    fraction = kept / len(datasets)
    return Outcome(
        fraction,
        _verdict(fraction >= float(params.get("min_fraction", 1.0))),
        f"order kept on {kept} of {len(datasets)} datasets" + (f"; broken: {'; '.join(broken)}" if broken else ""),
    )


@rule
def robust_to(tables, params) -> Outcome:
    """Figure 2: across the swept values of `parameter`, the seed-mean metric of every dataset
    varies by at most `max_spread_pct` of its best value ((max - min) / max)."""
    sensitivity = _table(tables, "sensitivity")
    parameter, datasets = params["parameter"], params.get("datasets", BENCHMARKS)
    metric = params.get("metric", "HR@5")
    needed = int(params.get("min_values", 3))
    spreads, short = {}, []
    for dataset in datasets:
        rows = sensitivity[(sensitivity["dataset"] == dataset) & (sensitivity["parameter"] == parameter)]
        means = rows.groupby("value")[metric].mean() if len(rows) else pd.Series(dtype=float)
        if len(means) < needed:
            short.append(f"{dataset} ({len(means)} of at least {needed} values)")
            continue
        spreads[dataset] = float((means.max() - means.min()) / means.max() * 100)
    if short:
        return Outcome(
            None,
            UNTESTABLE,
            f"sweep of {parameter} incomplete: {', '.join(short)}",
            [f"experiment `sensitivity` on {item.split(' ')[0]}" for item in short],
        )
    value = max(spreads.values())
    limit = float(params["max_spread_pct"])
    return Outcome(
        value,
        _verdict(value <= limit),
        f"largest spread of {metric} over {parameter} {value:.1f}% (at most {limit:g}% allowed); "
        + ", ".join(f"{dataset} {spread:.1f}%" for dataset, spread in spreads.items()),
    )


def _domain_rows(tables, params) -> tuple[pd.DataFrame, Outcome | None]:
    table = _table(tables, params["table"])
    table = table[table["metric"].isin(params.get("metrics", METRICS))]
    lacking = table[table["status"] != "ok"]
    if len(lacking) or table.empty:
        cells = pd.DataFrame(
            [
                (dataset, model, variant)
                for dataset in sorted(set(lacking["dataset"]))
                for model, variant in (("iclrec", "default"), ("elcrec", "ELCRec"))
            ],
            columns=["dataset", "model", "variant"],
        )
        return table, _untestable(
            "runs without results", cells, tables, f"Table {params['table'].removeprefix('table')}"
        )
    return table, None


@rule
def domain_gain(tables, params) -> Outcome:
    """Tables 8 and 9: ELCRec's mean relative gain over ICLRec across `metrics`, at least `at_least`
    (with `every_metric`, on each metric alone too)."""
    table, untestable = _domain_rows(tables, params)
    if untestable:
        return untestable
    gains = table["improvement_pct"].astype(float)
    value = float(gains.mean())
    at_least = float(params.get("at_least", 0.0))
    holds = value >= at_least and (not params.get("every_metric") or bool((gains >= at_least).all()))
    return Outcome(
        value,
        _verdict(holds),
        f"mean gain {value:.2f}% over ICLRec across {len(gains)} metric{'s' if len(gains) > 1 else ''} "
        f"(needs >= {at_least:g}%"
        + (" on every metric" if params.get("every_metric") else "")
        + "); "
        + ", ".join(f"{metric} {gain:.1f}%" for metric, gain in zip(table["metric"], gains, strict=True)),
    )


@rule
def domain_significant(tables, params) -> Outcome:
    """Tables 8 and 9: ELCRec better than ICLRec with the seed t-test p < `alpha` on every metric."""
    table, untestable = _domain_rows(tables, params)
    if untestable:
        return untestable
    p_values = pd.to_numeric(table["student_p"], errors="coerce")
    if p_values.isna().any():
        return Outcome(None, UNTESTABLE, "the seed t-test needs at least two seeds of both methods", [])
    alpha = float(params.get("alpha", 0.05))
    significant = (table["improvement_pct"].astype(float) > 0) & (p_values < alpha)
    return Outcome(
        float(significant.mean()),
        _verdict(bool(significant.all())),
        f"better with p < {alpha:g} on {int(significant.sum())} of {len(table)} metrics; "
        f"largest p {p_values.max():.2g}",
    )


@rule
def converges(tables, params) -> Outcome:
    """Figure 3: on every dataset (the seed mean per epoch) the training loss of the last `window`
    epochs is below that of the first epoch and validation HR@5 above it."""
    curves = _table(tables, "convergence")
    datasets, window = params.get("datasets", BENCHMARKS), int(params.get("window", 5))
    absent = [dataset for dataset in datasets if dataset not in set(curves["dataset"])]
    if absent:
        return Outcome(
            None,
            UNTESTABLE,
            f"no ELCRec training curves for {', '.join(absent)}",
            [f"the ELCRec runs of {dataset} (experiment `table1`)" for dataset in absent],
        )
    failing, shortest = [], None
    for dataset in datasets:
        mean = curves[curves["dataset"] == dataset].groupby("epoch")[["loss", "valid_HR@5"]].mean().sort_index()
        shortest = len(mean) if shortest is None else min(shortest, len(mean))
        late = mean.iloc[-window:].mean()
        if not (late["loss"] < mean["loss"].iloc[0] and late["valid_HR@5"] > mean["valid_HR@5"].iloc[0]):
            failing.append(dataset)
    return Outcome(
        (len(datasets) - len(failing)) / len(datasets),
        _verdict(not failing),
        f"loss down and valid HR@5 up on {len(datasets) - len(failing)} of {len(datasets)} datasets "
        f"(last {window} epochs against the first; shortest run {shortest} epochs)"
        + (f"; not on {', '.join(failing)}" if failing else ""),
    )


def _strong_baseline_cells(tables, params, columns: list[str]) -> tuple[pd.DataFrame, Outcome | None]:
    """The cross-entropy section's rows of `columns` on the chosen datasets and metrics, or the
    untestable outcome naming the runs they lack."""
    table = _table(tables, "strong_baselines")
    datasets, metrics = params.get("datasets", BENCHMARKS), params.get("metrics", METRICS)
    rows = table[table["dataset"].isin(datasets) & table["metric"].isin(metrics) & table["column"].isin(columns)]
    lacking = rows[rows["status"] != "ok"]
    if len(lacking) or rows.empty:
        return rows, _untestable("cross-entropy runs without results", lacking, tables, "Beyond: cross-entropy")
    return rows, None


@rule
def published_beats(tables, params) -> Outcome:
    """The paper's published ELCRec (`ELCRec (paper)`) above our `column`'s seed mean in at least
    `min_fraction` (default all) of the (dataset, metric) cells."""
    column = params["column"]
    rows, untestable = _strong_baseline_cells(tables, params, ["ELCRec (paper)", column])
    if untestable:
        return untestable
    means = rows.pivot_table(index=["dataset", "metric"], columns="column", values="mean")
    wins = means["ELCRec (paper)"] > means[column]
    lost = [f"{dataset} {metric}" for (dataset, metric), won in wins.items() if not won]
    fraction = float(wins.mean())
    return Outcome(
        fraction,
        _verdict(fraction >= float(params.get("min_fraction", 1.0))),
        f"the published ELCRec is above {column} in {int(wins.sum())} of {len(wins)} cells"
        + (f"; not in {', '.join(lost)}" if lost else ""),
    )


@rule
def beats_significantly(tables, params) -> Outcome:
    """Our `better` column's seed mean above `other`'s, with the paper's seed t-test p < `alpha`, in
    at least `min_fraction` (default all) of the (dataset, metric) cells; needs two seeds of each."""
    better, other = params["better"], params["other"]
    rows, untestable = _strong_baseline_cells(tables, params, [better, other])
    if untestable:
        return untestable
    tests = _table(tables, "strong_baseline_tests")
    datasets, metrics = params.get("datasets", BENCHMARKS), params.get("metrics", METRICS)
    tests = tests[
        tests["dataset"].isin(datasets)
        & tests["metric"].isin(metrics)
        & (tests["better"] == better)
        & (tests["other"] == other)
    ]
    p_values = pd.to_numeric(tests["student_p"], errors="coerce")
    if tests.empty or p_values.isna().any():
        return Outcome(None, UNTESTABLE, f"the seed t-test needs at least two seeds of {better} and {other}", [])
    alpha = float(params.get("alpha", 0.05))
    significant = (tests["better_mean"].astype(float) > tests["other_mean"].astype(float)) & (p_values < alpha)
    fraction = float(significant.mean())
    wilcoxon = pd.to_numeric(tests["wilcoxon"], errors="coerce")
    return Outcome(
        fraction,
        _verdict(fraction >= float(params.get("min_fraction", 1.0))),
        f"{better} above {other} with p < {alpha:g} in {int(significant.sum())} of {len(tests)} cells "
        f"(mean gain {tests['improvement_pct'].astype(float).mean():.2f}%; largest p {p_values.max():.2g}; "
        f"paired Wilcoxon over users p < {alpha:g} in {int((wilcoxon < alpha).sum())})",
    )


PERCENT, FRACTION = "percent", "fraction"


def unit_kind(unit) -> str | None:
    """What a claim's `unit` makes its numbers: a percentage ("%", "% spread": 8.9 is 8.9%) or a
    fraction of a count ("of the cells": 0.9375 is 15 of 16); None for anything else."""
    if not isinstance(unit, str):
        return None
    return PERCENT if unit.startswith("%") else FRACTION if unit.startswith("of ") else None


def _check_unit(path: Path, claim: dict) -> None:
    """A claim with a number (the paper's or a rule's) names its unit; a fraction lies in [0, 1]."""
    if claim["rule"] == "untested" and claim.get("paper_value") is None:
        return
    kind = unit_kind(claim.get("unit"))
    if kind is None:
        raise ElcrecError(
            f"{path}: claim {claim['id']!r}: `unit` must be a percentage ('%', '% spread') or a fraction "
            f"('of the cells'), got {claim.get('unit')!r}"
        )
    value = claim.get("paper_value")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ElcrecError(f"{path}: claim {claim['id']!r}: paper_value must be a number, got {value!r}")
    if kind == FRACTION and value is not None and not 0 <= value <= 1:
        raise ElcrecError(f"{path}: claim {claim['id']!r}: paper_value {value} is no fraction ({claim['unit']!r})")


def load(path: str | Path, key: str = "claims") -> list[dict]:
    """The list under `key`: `claims` (the paper's, required) or `beyond` (ours beyond the paper)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        claims = document[key] if key == "claims" else document.get(key) or []
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as error:
        raise ElcrecError(f"{path}: expected a YAML file with a `claims:` list ({error})") from error
    for number, claim in enumerate(claims, 1):
        missing = {"id", "section", "sentence", "rule"} - set(claim)
        if missing:
            raise ElcrecError(f"{path}: claim {number} lacks {sorted(missing)}")
        if claim["rule"] == "untested" and "why" not in claim:
            raise ElcrecError(f"{path}: claim {claim['id']!r}: an untested claim needs `why`")
        if claim["rule"] != "untested" and claim["rule"] not in RULES:
            raise ElcrecError(f"{path}: claim {claim['id']!r}: unknown rule {claim['rule']!r} (rules: {sorted(RULES)})")
        _check_unit(path, claim)
    return claims


def resolved_params(claim: dict, tolerance_pct: float) -> dict:
    """The rule's parameters; `at_least: paper` is the paper's own number less the report's relative
    tolerance (a claimed size holds when ours reaches it within the tolerance)."""
    params = dict(claim.get("params") or {})
    if params.get("at_least") == "paper":
        if claim.get("paper_value") is None:
            raise ElcrecError(f"claim {claim['id']!r}: `at_least: paper` needs the claim's paper_value")
        params["at_least"] = float(claim["paper_value"]) * (1 - tolerance_pct / 100)
    return params


def check(claims: list[dict], tables: dict[str, pd.DataFrame], tolerance_pct: float = 5.0) -> pd.DataFrame:
    """One row per claim: the paper's sentence and value, ours, the verdict and what it rests on."""
    rows = []
    for claim in claims:
        if claim["rule"] == "untested":  # a claim no table of ours can speak to, with the reason
            outcome = Outcome(None, UNTESTABLE, claim["why"], [])
        else:
            outcome = RULES[claim["rule"]](tables, resolved_params(claim, tolerance_pct))
        rows.append(
            {
                "id": claim["id"],
                "section": claim["section"],
                "kind": claim.get("kind"),
                "sentence": claim["sentence"],
                "rule": claim["rule"],
                "paper_value": claim.get("paper_value"),
                "value": outcome.value,
                "unit": claim.get("unit"),
                "verdict": outcome.verdict,
                "detail": outcome.detail,
                "needs": "; ".join(outcome.needs),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)

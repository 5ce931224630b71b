"""report/claims.py: every verdict rule on hand-made analysis tables (holds, does not hold, not
yet testable), and the claims file of the project."""

import pandas as pd
import pytest
from conftest import REPO

from elcrec import ElcrecError
from elcrec.report import claims
from elcrec.report.claims import FAILS, HOLDS, UNTESTABLE

TWO = {"datasets": ["beauty", "toys"], "metrics": ["HR@5", "NDCG@5"]}


def table1(elcrec: dict, sasrec: dict, gru_status: str = "ok") -> pd.DataFrame:
    """ELCRec and two baselines on two datasets x two metrics; `elcrec` and `sasrec` give the
    means by (dataset, metric); GRU4Rec is at 0.01 everywhere."""
    rows = []
    for dataset in ("beauty", "toys"):
        for metric in ("HR@5", "NDCG@5"):
            for column, model, variant, source, mean, status in (
                ("ELCRec", "elcrec", "ELCRec", "proposed", elcrec[(dataset, metric)], "ok"),
                ("SASRec", "sasrec", "default", "quoted", sasrec[(dataset, metric)], "ok"),
                ("GRU4Rec", "gru4rec", "default", "quoted", 0.01, gru_status),
            ):
                rows.append(
                    {
                        "dataset": dataset,
                        "column": column,
                        "model": model,
                        "variant": variant,
                        "metric": metric,
                        "source": source,
                        "status": status,
                        "mean": mean if status == "ok" else None,
                    }
                )
    return pd.DataFrame(rows)


CELLS = [(d, m) for d in ("beauty", "toys") for m in ("HR@5", "NDCG@5")]


def missing_table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["table", "dataset", "model", "variant", "seed", "status", "target"])


def test_mean_improvement_is_the_mean_relative_gain_over_the_best_baseline():
    elcrec = dict(zip(CELLS, [0.11, 0.22, 0.30, 0.40], strict=True))
    sasrec = dict(zip(CELLS, [0.10, 0.20, 0.30, 0.50], strict=True))
    tables = {"table1": table1(elcrec, sasrec)}
    outcome = claims.mean_improvement_over_best_baseline(tables, TWO | {"at_least": 2})
    # gains over the best baseline (SASRec; GRU4Rec's 0.01 is never best): +10%, +10%, 0%, -20%
    assert outcome.value == pytest.approx(0.0, abs=1e-9) and outcome.verdict == FAILS
    assert "smallest -20.00% (toys NDCG@5)" in outcome.detail
    assert claims.mean_improvement_over_best_baseline(tables, TWO | {"at_least": -1}).verdict == HOLDS
    best = claims.best_in_every_cell(tables, TWO)
    assert best.value == 0.5 and best.verdict == FAILS and "toys HR@5, toys NDCG@5" in best.detail
    against_gru4rec = claims.best_in_every_cell(tables, TWO | {"against": ["GRU4Rec"]})
    assert against_gru4rec.verdict == HOLDS and against_gru4rec.value == 1.0


def test_table1_claims_are_untestable_while_a_column_has_no_runs():
    elcrec = dict.fromkeys(CELLS, 0.2)
    tables = {
        "table1": table1(elcrec, dict.fromkeys(CELLS, 0.1), gru_status="missing"),
        "missing": missing_table(
            [("Table 1", "beauty", "gru4rec", "default", 1, "missing", "results/runs/beauty/gru4rec/default/seed1/m")]
            + [("Table 1", "beauty", "dcrec", "default", 1, "pending", "")]
        ),
    }
    for rule in ("mean_improvement_over_best_baseline", "best_in_every_cell", "significant_over_runner_up"):
        outcome = claims.RULES[rule](tables, TWO)
        assert outcome.verdict == UNTESTABLE and outcome.value is None
        assert outcome.needs == ["results/runs/beauty/gru4rec/default/seed1/m"]  # dcrec is not a column here
        assert "1 run it needs has no results yet" in outcome.detail


def significance_table(best: list[str], p_values: list[float | None], status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": [d for d, _ in CELLS],
            "metric": [m for _, m in CELLS],
            "status": status,
            "best": best,
            "student_p": p_values,
        }
    )


def test_significance_needs_elcrec_best_and_p_below_alpha_in_every_cell():
    tables = {"table1": table1(dict.fromkeys(CELLS, 0.2), dict.fromkeys(CELLS, 0.1))}
    tables["table1_tests"] = significance_table(["ELCRec"] * 4, [1e-4, 1e-3, 0.01, 0.04])
    outcome = claims.significant_over_runner_up(tables, TWO | {"alpha": 0.05})
    assert outcome.verdict == HOLDS and outcome.value == 1.0
    assert claims.significant_over_runner_up(tables, TWO | {"alpha": 0.01}).verdict == FAILS
    tables["table1_tests"] = significance_table(["ELCRec", "SASRec", "ELCRec", "ELCRec"], [1e-4] * 4)
    assert claims.significant_over_runner_up(tables, TWO).value == 0.75
    tables["table1_tests"] = significance_table(["ELCRec"] * 4, [None] * 4, status="ok")  # one seed: no t-test
    assert claims.significant_over_runner_up(tables, TWO).verdict == UNTESTABLE


def efficiency(iclrec: list[float], elcrec: list[float], status: str = "ok") -> pd.DataFrame:
    rows = []
    for index, dataset in enumerate(("beauty", "toys")):
        rows.append({"dataset": dataset, "column": "ICLRec", "status": status, "training_seconds": iclrec[index]})
        rows.append({"dataset": dataset, "column": "ELCRec", "status": "ok", "training_seconds": elcrec[index]})
    return pd.DataFrame(rows)


def test_saving_is_the_mean_relative_saving_over_the_datasets():
    params = {"datasets": ["beauty", "toys"], "baseline": "ICLRec", "quantity": "training_seconds", "at_least": 20}
    # per dataset 20% and 30%; the paper's way is the ratio of the means: 1 - 220 / 300
    outcome = claims.saving_over({"efficiency": efficiency([100, 200], [80, 140])}, params)
    assert outcome.value == pytest.approx(100 * (1 - 220 / 300)) and outcome.verdict == HOLDS
    mean_of_ratios = claims.saving_over(
        {"efficiency": efficiency([100, 200], [80, 140])}, params | {"aggregate": "mean_of_ratios"}
    )
    assert mean_of_ratios.value == pytest.approx(25.0)
    every = claims.saving_over({"efficiency": efficiency([100, 200], [80, 140])}, params | {"at_least": 25})
    assert every.verdict == HOLDS  # 26.7% on the means ...
    every = claims.saving_over(
        {"efficiency": efficiency([100, 200], [80, 140])}, params | {"at_least": 25, "every_dataset": True}
    )
    assert every.verdict == FAILS  # ... but Beauty alone saves only 20%
    assert claims.saving_over({"efficiency": efficiency([100, 200], [90, 190])}, params).verdict == FAILS
    untestable = claims.saving_over({"efficiency": efficiency([100, 200], [80, 140], status="missing")}, params)
    assert untestable.verdict == UNTESTABLE and untestable.needs == [
        "experiment `cost`: ICLRec on beauty",
        "experiment `cost`: ICLRec on toys",
    ]


def ablation_table(means: dict[str, float], status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"dataset": "beauty", "variant": variant, "status": status, "mean": mean, "cell": f"beauty--elcrec--{v}"}
            for v, (variant, mean) in enumerate(means.items())
        ]
    )


PAIRS = {"datasets": ["beauty"], "pairs": [["B", "B+ICL"], ["B", "B+ELCM"], ["B+ICL", "ELCRec"], ["B+ELCM", "ELCRec"]]}


def test_ablation_order_checks_every_pair():
    kept = claims.ablation_order({"table10": ablation_table({"B": 1, "B+ICL": 2, "B+ELCM": 3, "ELCRec": 4})}, PAIRS)
    assert kept.verdict == HOLDS and kept.value == 1.0
    broken = claims.ablation_order({"table10": ablation_table({"B": 1, "B+ICL": 5, "B+ELCM": 3, "ELCRec": 4})}, PAIRS)
    assert broken.verdict == FAILS and broken.value == 0.0 and "B+ICL 5.0000 >= ELCRec 4.0000" in broken.detail
    two = pd.concat(
        [
            ablation_table({"B": 1, "B+ICL": 2, "B+ELCM": 3, "ELCRec": 4}),
            ablation_table({"B": 1, "B+ICL": 5, "B+ELCM": 3, "ELCRec": 4}).assign(dataset="toys"),
        ]
    )
    three_of_four = PAIRS | {"datasets": ["beauty", "toys"], "min_fraction": 0.5}
    assert claims.ablation_order({"table10": two}, three_of_four).value == 0.5
    assert claims.ablation_order({"table10": two}, three_of_four).verdict == HOLDS
    assert claims.ablation_order({"table10": two}, three_of_four | {"min_fraction": 0.75}).verdict == FAILS
    tables = {
        "table10": ablation_table({"B": 1, "B+ICL": 2, "B+ELCM": 3, "ELCRec": 4}, status="missing"),
        "missing": missing_table([("Table 10", "beauty", "elcrec", "B", 1, "missing", "results/runs/beauty/elcrec/B")]),
    }
    untestable = claims.ablation_order(tables, PAIRS)
    assert untestable.verdict == UNTESTABLE and untestable.needs == ["results/runs/beauty/elcrec/B"]


def sensitivity_table(values: list[float], hr: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "beauty", "parameter": "alpha", "value": values, "seed": 1, "HR@5": hr})


def test_robustness_is_the_largest_spread_across_the_swept_values():
    params = {"parameter": "alpha", "datasets": ["beauty"], "max_spread_pct": 10, "min_values": 3}
    steady = claims.robust_to({"sensitivity": sensitivity_table([0.1, 1, 10], [0.050, 0.048, 0.046])}, params)
    assert steady.value == pytest.approx(8.0) and steady.verdict == HOLDS
    shaky = claims.robust_to({"sensitivity": sensitivity_table([0.1, 1, 10], [0.050, 0.030, 0.046])}, params)
    assert shaky.value == pytest.approx(40.0) and shaky.verdict == FAILS
    short = claims.robust_to({"sensitivity": sensitivity_table([0.1, 1], [0.05, 0.05])}, params)
    assert short.verdict == UNTESTABLE and "beauty (2 of at least 3 values)" in short.detail


def test_domain_gain_is_the_mean_gain_over_iclrec():
    table = pd.DataFrame({"dataset": "ml-1m", "metric": ["HR@5", "HR@20"], "status": "ok", "improvement_pct": [4, 8]})
    outcome = claims.domain_gain({"table8": table}, {"table": "table8", "at_least": 5})
    assert outcome.value == 6.0 and outcome.verdict == HOLDS
    assert claims.domain_gain({"table8": table}, {"table": "table8", "at_least": 7}).verdict == FAILS
    tables = {
        "table8": table.assign(status="missing"),
        "missing": missing_table([("Table 8", "ml-1m", "iclrec", "default", 1, "missing", "results/runs/ml-1m/x")]),
    }
    assert claims.domain_gain(tables, {"table": "table8"}).needs == ["results/runs/ml-1m/x"]


def test_domain_significance_needs_a_gain_and_p_below_alpha_on_every_metric():
    table = pd.DataFrame(
        {
            "dataset": "ml-1m",
            "metric": ["HR@5", "HR@20"],
            "status": "ok",
            "improvement_pct": [4, 8],
            "student_p": [0.01, 0.02],
        }
    )
    assert claims.domain_significant({"table8": table}, {"table": "table8"}).verdict == HOLDS
    assert claims.domain_significant({"table8": table}, {"table": "table8", "alpha": 0.015}).value == 0.5
    one_seed = table.assign(student_p=None)
    assert claims.domain_significant({"table8": one_seed}, {"table": "table8"}).verdict == UNTESTABLE


def convergence_table(loss: list[float], hr: list[float], dataset: str = "beauty") -> pd.DataFrame:
    return pd.DataFrame({"dataset": dataset, "seed": 1, "epoch": range(len(loss)), "loss": loss, "valid_HR@5": hr})


def test_convergence_compares_the_last_epochs_with_the_first():
    params = {"datasets": ["beauty"], "window": 2}
    good = convergence_table([9, 5, 3, 3], [0.01, 0.03, 0.05, 0.05])
    assert claims.converges({"convergence": good}, params).verdict == HOLDS
    flat = convergence_table([9, 5, 3, 3], [0.05, 0.03, 0.04, 0.05])  # HR@5 never rises above epoch 0's
    assert claims.converges({"convergence": flat}, params).verdict == FAILS
    outcome = claims.converges({"convergence": good}, {"datasets": ["beauty", "yelp"]})
    assert outcome.verdict == UNTESTABLE and "yelp" in outcome.detail


def test_at_least_paper_is_the_paper_value_less_the_tolerance():
    claim = {"id": "x", "paper_value": 10.0, "params": {"at_least": "paper", "table": "table8"}}
    assert claims.resolved_params(claim, 5.0)["at_least"] == pytest.approx(9.5)
    with pytest.raises(ElcrecError, match="needs the claim's paper_value"):
        claims.resolved_params({"id": "y", "params": {"at_least": "paper"}}, 5.0)


def test_check_writes_one_row_per_claim_and_untested_claims_say_why():
    listed = [
        {"id": "a", "section": "Abstract", "sentence": "s", "rule": "domain_gain", "params": {"table": "table8"}},
        {"id": "b", "section": "4", "sentence": "t", "rule": "untested", "why": "no table of ours measures it"},
    ]
    table = pd.DataFrame({"dataset": "ml-1m", "metric": ["HR@5"], "status": "ok", "improvement_pct": [3.0]})
    result = claims.check(listed, {"table8": table})
    assert result["verdict"].tolist() == [HOLDS, UNTESTABLE] and result["detail"][1] == "no table of ours measures it"


def test_the_project_claims_file_loads_and_names_known_rules(tmp_path):
    listed = claims.load(REPO / "config" / "claims.yaml")
    assert len(listed) >= 10 and len({claim["id"] for claim in listed}) == len(listed)
    kinds = {claim["rule"] for claim in listed}
    assert {"mean_improvement_over_best_baseline", "significant_over_runner_up", "saving_over"} <= kinds
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - {id: x, section: s, sentence: t, rule: nonsense}\n")
    with pytest.raises(ElcrecError, match="unknown rule 'nonsense'"):
        claims.load(bad)
    beyond = claims.load(REPO / "config" / "claims.yaml", "beyond")
    assert {claim["rule"] for claim in beyond} == {"published_beats", "beats_significantly"}
    assert claims.load(bad, "beyond") == []  # a file without beyond-the-paper verdicts


def test_every_claim_with_a_number_names_a_percentage_or_a_fraction_unit(tmp_path):
    for key in ("claims", "beyond"):
        for claim in claims.load(REPO / "config" / "claims.yaml", key):
            if claim.get("paper_value") is not None or claim["rule"] != "untested":
                assert claims.unit_kind(claim["unit"]) in (claims.PERCENT, claims.FRACTION), claim["id"]
    assert claims.unit_kind("% spread") == claims.PERCENT and claims.unit_kind("of the cells") == claims.FRACTION
    head = "claims:\n  - {id: x, section: s, sentence: t, rule: domain_gain, "
    for tail, error in (
        ("paper_value: 8.9}", "`unit` must be a percentage"),  # the unit dropped
        ("paper_value: 8.9, unit: percent}", "`unit` must be a percentage"),
        ("paper_value: 93.75, unit: of the cells}", "is no fraction"),  # a percentage given as a fraction
        ("paper_value: '8.9%', unit: '%'}", "paper_value must be a number"),
        ("unit: null}", "`unit` must be a percentage"),  # a rule's value needs its unit too
    ):
        bad = tmp_path / "claims.yaml"
        bad.write_text(head + tail + "\n")
        with pytest.raises(ElcrecError, match=error):
            claims.load(bad)
    (tmp_path / "untested.yaml").write_text("claims:\n  - {id: x, section: s, sentence: t, rule: untested, why: w}\n")
    assert claims.load(tmp_path / "untested.yaml")[0]["id"] == "x"  # no number, no unit


def strong_baselines(sasrec_ce: float, elcrec_ce: float, status: str = "ok") -> dict[str, pd.DataFrame]:
    """The cross-entropy section's tables on two datasets x two metrics: the published ELCRec at 0.05,
    SASRec-CE and ELCRec-CE at the given means (ELCRec-CE's p-value 0.01 where it is higher)."""
    rows, tests = [], []
    for dataset in ("beauty", "toys"):
        for metric in ("HR@5", "NDCG@5"):
            rows.append(
                {"dataset": dataset, "metric": metric, "column": "ELCRec (paper)", "status": "ok", "mean": 0.05}
            )
            for column, mean, column_status in (("SASRec-CE", sasrec_ce, status), ("ELCRec-CE", elcrec_ce, "ok")):
                cell = f"{dataset}--{column}"
                ok = column_status == "ok"
                rows.append(
                    {
                        "dataset": dataset,
                        "metric": metric,
                        "column": column,
                        "model": column.split("-")[0].lower(),
                        "variant": "ce",
                        "cell": cell,
                        "status": column_status,
                        "mean": mean if ok else None,
                    }
                )
            tests.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    "better": "ELCRec-CE",
                    "other": "SASRec-CE",
                    "status": status,
                    "better_mean": elcrec_ce,
                    "other_mean": sasrec_ce if status == "ok" else None,
                    "improvement_pct": (elcrec_ce - sasrec_ce) / sasrec_ce * 100,
                    "student_p": 0.01 if status == "ok" else None,
                    "wilcoxon": 0.2,
                }
            )
    return {"strong_baselines": pd.DataFrame(rows), "strong_baseline_tests": pd.DataFrame(tests)}


def test_published_elcrec_against_a_cross_entropy_baseline():
    params = TWO | {"column": "SASRec-CE"}
    beaten = claims.RULES["published_beats"](strong_baselines(sasrec_ce=0.04, elcrec_ce=0.06), params)
    assert beaten.verdict == HOLDS and beaten.value == 1.0
    stronger = claims.RULES["published_beats"](strong_baselines(sasrec_ce=0.07, elcrec_ce=0.08), params)
    assert stronger.verdict == FAILS and stronger.value == 0.0 and "not in beauty HR@5" in stronger.detail
    missing = claims.RULES["published_beats"](strong_baselines(0.04, 0.06, status="missing"), params)
    assert missing.verdict == UNTESTABLE and "cross-entropy runs without results" in missing.detail


def test_clustering_adds_to_a_cross_entropy_encoder_needs_a_higher_mean_and_p_below_alpha():
    params = TWO | {"better": "ELCRec-CE", "other": "SASRec-CE", "alpha": 0.05}
    adds = claims.RULES["beats_significantly"](strong_baselines(sasrec_ce=0.07, elcrec_ce=0.08), params)
    assert adds.verdict == HOLDS and adds.value == 1.0 and "mean gain 14.29%" in adds.detail
    worse = claims.RULES["beats_significantly"](strong_baselines(sasrec_ce=0.08, elcrec_ce=0.07), params)
    assert worse.verdict == FAILS and worse.value == 0.0
    tables = strong_baselines(sasrec_ce=0.07, elcrec_ce=0.08)
    tables["strong_baseline_tests"]["student_p"] = 0.2  # higher, but not significantly
    assert claims.RULES["beats_significantly"](tables, params).verdict == FAILS
    tables["strong_baseline_tests"]["student_p"] = None  # one seed: no t-test
    assert claims.RULES["beats_significantly"](tables, params).verdict == UNTESTABLE

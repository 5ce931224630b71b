import json
import math

import numpy as np
import pytest

from elcrec.stats import (
    aggregate,
    collect_runs,
    holm,
    paired_user_tests,
    per_user_metric,
    rank_cells,
    seed_test,
)


def write_run(root, dataset, model, variant, seed, ndcg):
    run_dir = root / dataset / model / variant / f"seed{seed}"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"test": {"NDCG@20": ndcg}, "valid": {"NDCG@20": ndcg + 1}}))


def test_collect_aggregate_and_rank(tmp_path):
    for seed, value in ((1, 0.1), (2, 0.3)):
        write_run(tmp_path, "beauty", "elcrec", "ELCRec", seed, value)
    for seed, value in ((1, 0.1), (2, 0.1)):
        write_run(tmp_path, "beauty", "iclrec", "default", seed, value)
    write_run(tmp_path, "beauty", "sasrec", "default", 1, 0.1)
    tidy = collect_runs(tmp_path)
    assert len(tidy) == 10 and set(tidy["split"]) == {"test", "valid"}
    table = aggregate(tidy)
    test = table[table["split"] == "test"].set_index("model")
    assert test.loc["elcrec", "mean"] == pytest.approx(0.2)
    assert test.loc["elcrec", "std"] == pytest.approx(math.sqrt(0.02))  # ddof=1 of 0.1, 0.3
    assert test.loc["iclrec", "seeds"] == 2 and math.isnan(test.loc["sasrec", "std"])
    ranked = rank_cells(table).query("split == 'test'").set_index("model")
    assert ranked["rank"].to_dict() == {"elcrec": 1, "iclrec": 2, "sasrec": 2}  # a tie shares rank 2
    assert ranked.loc["elcrec", "improvement_pct"] == pytest.approx(100.0)
    assert math.isnan(ranked.loc["iclrec", "improvement_pct"])


def test_seed_t_test_against_a_value_worked_out_by_hand():
    # a = 1, 2, 3 (mean 2, var 1); b = 4, 5, 6 (mean 5, var 1): pooled sd 1, t = -3 / sqrt(2/3) = -3.674,
    # df 4; two-sided p = 2 * P(T_4 < -3.674) = 0.02131 (t table / closed form for 4 df)
    t = -3 / math.sqrt(2 / 3)
    closed_form = 1 - (t * t / (t * t + 4)) ** 0.5 * (1 + 2 / (t * t + 4))  # two-sided p for 4 df
    assert seed_test([1, 2, 3], [4, 5, 6]) == pytest.approx(closed_form, rel=1e-9)
    assert seed_test([1, 2, 3], [4, 5, 6]) == pytest.approx(0.02131, abs=5e-5)
    assert seed_test([1.0], [2.0, 3.0]) is None
    assert seed_test([1, 2, 3], [4, 6, 9], welch=True) != seed_test([1, 2, 3], [4, 6, 9])


def test_holm_on_a_known_example():
    # p = 0.01, 0.04, 0.03 with m = 3: sorted 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.6]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def test_per_user_metrics_and_paired_tests():
    ranks = np.array([0, 4, 5, 30])
    assert per_user_metric(ranks, "HR@5").tolist() == [1, 1, 0, 0]
    assert per_user_metric(ranks, "NDCG@5")[1] == pytest.approx(1 / math.log2(6))
    assert per_user_metric(ranks, "MRR")[3] == pytest.approx(1 / 31)
    with pytest.raises(ValueError):
        per_user_metric(ranks, "AUC")
    generator = np.random.default_rng(0)
    better, worse = generator.random(200) + 0.2, generator.random(200)
    tests = paired_user_tests(better, worse)
    assert tests["wilcoxon"] < 1e-3 and tests["paired_t"] < 1e-3
    assert paired_user_tests(worse, worse) == {"wilcoxon": None, "paired_t": None}


def test_paper_file_has_our_two_keys_over_every_column():
    from conftest import REPO

    from elcrec.stats import load_paper

    paper = load_paper(REPO / "config" / "paper.yaml")
    assert set(paper["column_sources"]["quoted"]) | set(paper["column_sources"]["rerun"]) | {"ELCRec"} == set(
        paper["table1_columns"]
    )
    assert set(paper["table1_columns"]) <= set(paper["run_names"])


def test_paper_file_copies_the_transcription_verbatim():
    import yaml
    from conftest import REPO, mirrored

    from elcrec.stats import load_paper

    transcription = mirrored("paper_tables.yaml")  # the project's transcription source, where a mirror holds it
    if transcription is None:
        pytest.skip('needs paper_tables.yaml in ELCREC_TEST_MIRRORS (README "Tests on the real files")')
    paper = load_paper(REPO / "config" / "paper.yaml")
    shared = yaml.safe_load(transcription.read_text())
    assert {key: value for key, value in paper.items() if key not in ("run_names", "column_sources")} == shared


def test_compare_with_paper_flags_outside_two_std_or_the_tolerance():
    from elcrec.stats import compare_with_paper

    # 0.0509 and 0.0519: mean 0.0514, std 0.000707; the paper's 0.0509 lies within 2 std and 1% away
    inside = compare_with_paper(0.0514, 0.000707, 2, 0.0509, 5.0)
    assert not inside["flag"] and inside["relative_pct"] == pytest.approx(100 * 0.0005 / 0.0509)
    assert compare_with_paper(0.0305, 0.0007, 2, 0.0387, 5.0)["flag"]  # 21% below
    assert compare_with_paper(0.0390, 0.0001, 2, 0.0387, 5.0)["flag"]  # within 5% but outside 2 std
    assert not compare_with_paper(0.0390, float("nan"), 1, 0.0387, 5.0)["flag"]  # one seed: tolerance only
    assert compare_with_paper(0.1, 0.0, 1, None, 5.0) == {"difference": None, "relative_pct": None, "flag": False}

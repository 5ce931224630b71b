"""report/beyond.py: the cross-entropy section's table and tests from run directories."""

import math

import pytest
from conftest import REPO
from run_helpers import write_run

from elcrec.report import beyond, records, tables
from elcrec.stats import load_paper


@pytest.fixture(scope="module")
def paper():
    return load_paper(REPO / "config" / "paper.yaml")


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, (elcrec, sasrec_ce, elcrec_ce) in enumerate([(0.30, 0.40, 0.50), (0.32, 0.38, 0.52)], start=1):
        write_run(root, "beauty", "elcrec", "ELCRec", seed, elcrec)
        write_run(root, "beauty", "sasrec", "ce", seed, sasrec_ce)
        write_run(root, "beauty", "elcrec", "ce", seed, elcrec_ce)
    return records.run_records(root)


def test_the_table_puts_the_published_elcrec_beside_our_columns(runs, paper):
    table = beyond.table(runs, paper).set_index(["dataset", "column", "metric"])
    assert table.loc[("beauty", "ELCRec (paper)", "NDCG@20"), "mean"] == paper["table1"]["beauty"]["ELCRec"]["NDCG@20"]
    sasrec = table.loc[("beauty", "SASRec-CE", "HR@5")]
    assert sasrec["status"] == "ok" and sasrec["seeds"] == 2 and sasrec["mean"] == pytest.approx(0.39)
    assert sasrec["cell"] == "beauty--sasrec--ce"
    iclrec = table.loc[("beauty", "ICLRec-CE", "HR@5")]
    assert iclrec["status"] == "missing" and math.isnan(iclrec["mean"])
    assert set(table.loc["toys"]["status"]) == {"ok", "missing"}  # only the published column there
    assert len(table) == 4 * 4 * (1 + len(beyond.COLUMNS))


def test_the_tests_compare_each_pair_with_the_seed_t_test_and_paired_user_tests(runs):
    tests = beyond.tests(runs).set_index(["dataset", "metric", "better"])
    adds = tests.loc[("beauty", "HR@5", "ELCRec-CE")]
    assert adds["status"] == "ok" and adds["improvement_pct"] == pytest.approx((0.51 - 0.39) / 0.39 * 100)
    assert adds["student_p"] < 0.05 and adds["wilcoxon"] < 0.05 and 0 < adds["paired_t"] < 0.05
    published_side = tests.loc[("beauty", "HR@5", "ELCRec")]
    assert published_side["improvement_pct"] < 0  # our BCE ELCRec below SASRec-CE here
    assert set(tests.loc["toys"]["status"]) == {"missing"}


def test_build_writes_the_section_and_leaves_the_ce_runs_out_of_the_departures(tmp_path, paper):
    from run_helpers import write_stats

    root = tmp_path / "runs"
    write_run(root, "beauty", "elcrec", "ELCRec", 1, 0.3)
    write_run(root, "beauty", "elcrec", "ce", 1, 0.5)
    built = tables.build(root, write_stats(tmp_path / "sequences"), paper, [1], {"elcrec", "sasrec", "iclrec"})
    assert {"strong_baselines", "strong_baseline_tests", "beyond_claims"} <= set(built)
    assert "ce" not in set(built["departures"]["variant"])
    missing = built["missing"]
    assert "results/runs/beauty/sasrec/ce/seed1/metrics.json" in set(missing["target"])

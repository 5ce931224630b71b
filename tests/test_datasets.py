"""report/datasets.py: Tables 6 and 7 from the sequences stage's stats files."""

import pytest
from conftest import REPO
from run_helpers import write_stats

from elcrec.report.datasets import statistics
from elcrec.stats import load_paper


def test_tables_6_and_7_beside_the_paper(tmp_path):
    paper = load_paper(REPO / "config" / "paper.yaml")
    write_stats(tmp_path)
    table6, table7 = statistics(tmp_path, paper)
    beauty = table6.set_index("dataset").loc["beauty"]
    assert (beauty["users"], beauty["actions"], beauty["sparsity_pct"], beauty["paper_users"]) == (
        120,
        1322,
        80.0,
        "22363",
    )
    assert table6.set_index("dataset").loc["sports", "status"] == "missing"
    row = table7.iloc[0]
    assert (row["users"], row["movies"], row["ratings"], row["paper_users"]) == (10, 5, 40, 6040)
    assert row["ratings_per_user"] == pytest.approx(4.0) and row["ratings_per_movie"] == pytest.approx(8.0)

"""report/tables.py: the paper's tables from run directories (fake runs with chosen numbers)."""

import json
import math

import numpy as np
import pytest
from conftest import REPO
from run_helpers import write_diverged_run, write_run, write_stats

from elcrec.report import records, tables
from elcrec.stats import cell_id, load_paper, per_user_metric, seed_test

REGISTERED = {"sasrec", "cl4srec", "iclrec", "elcrec"}


@pytest.fixture(scope="module")
def paper():
    return load_paper(REPO / "config" / "paper.yaml")


@pytest.fixture
def built(tmp_path, paper):
    runs = tmp_path / "runs"
    for seed, (elcrec, iclrec) in enumerate([(0.50, 0.30), (0.46, 0.34)], start=1):
        write_run(runs, "beauty", "elcrec", "ELCRec", seed, elcrec)
        write_run(runs, "beauty", "iclrec", "default", seed, iclrec)
        write_run(runs, "beauty", "elcrec", "B", seed, 0.2)
    write_run(runs, "beauty", "elcrec", "cost", 1, 0.45, epochs=4)
    pretraining = {"pretraining_seconds": 60.0, "mean_memory_bytes": 256 * 2**20, "peak_memory_bytes": 1024 * 2**20}
    write_run(runs, "sports", "s3rec", "cost", 1, 0.3, epochs=4, pretraining=pretraining)
    write_run(runs, "beauty", "elcrec", "alpha-0.1", 1, 0.4, settings={"alpha": 0.1})
    write_run(runs, "beauty", "elcrec", "k-64", 1, 0.35, settings={"clusters": 64}, other_masking=False)
    sequences = write_stats(tmp_path / "sequences")
    return runs, tables.build(runs, sequences, paper, [1, 2], REGISTERED)


def test_table1_cells_ranks_sources_and_status(built):
    _, result = built
    table1 = result["table1"].set_index(["dataset", "column", "metric"])
    assert len(table1) == 4 * 14 * 4 and set(result) == set(tables.TABLE_NAMES)  # 13 paper columns and Pop
    elcrec, iclrec = table1.loc[("beauty", "ELCRec", "HR@5")], table1.loc[("beauty", "ICLRec", "HR@5")]
    assert (elcrec["rank"], iclrec["rank"]) == (1, 2) and elcrec["mean"] == pytest.approx(0.48)
    assert elcrec["std"] == pytest.approx(math.sqrt(0.0008)) and elcrec["seeds"] == 2
    assert (elcrec["source"], iclrec["source"], table1.loc[("beauty", "SASRec", "HR@5"), "source"]) == (
        "proposed",
        "rerun",
        "quoted",
    )
    assert table1.loc[("beauty", "SASRec", "HR@5"), "status"] == "missing"  # registered, no run
    assert table1.loc[("beauty", "BPR-MF", "HR@5"), "status"] == "pending"  # not implemented
    assert elcrec["flag"] and elcrec["paper"] == pytest.approx(0.0529)  # fake numbers are far from the paper
    assert "typo" in table1.loc[("sports", "Caser", "NDCG@20"), "note"]  # the transcription's note reaches the cell


def test_significance_of_best_against_runner_up(built):
    runs, result = built
    tests = result["table1_tests"].set_index(["dataset", "metric"])
    row = tests.loc[("beauty", "HR@5")]
    assert (row["best"], row["runner_up"]) == ("ELCRec", "ICLRec")
    assert row["improvement_pct"] == pytest.approx(100 * (0.48 - 0.32) / 0.32)
    assert row["student_p"] == pytest.approx(seed_test([0.50, 0.46], [0.30, 0.34]))
    # the paired test runs on the seed-averaged per-user values, Holm across the table's comparisons
    per_user = [
        np.mean(
            [per_user_metric(np.load(runs / f"beauty/{m}/seed{s}/user_ranks.npz")["test"], "HR@5") for s in (1, 2)], 0
        )
        for m in ("elcrec/ELCRec", "iclrec/default")
    ]
    from scipy.stats import wilcoxon

    assert row["wilcoxon"] == pytest.approx(wilcoxon(*per_user).pvalue)
    present = tests["wilcoxon"].dropna()
    assert row["wilcoxon_holm"] >= row["wilcoxon"] and row["wilcoxon_holm"] <= min(1, len(present) * row["wilcoxon"])
    assert tests.loc[("sports", "HR@5"), "status"] == "fewer than two reproduced columns"
    assert math.isnan(tests.loc[("sports", "HR@5"), "student_p"])


def test_pop_is_a_column_of_ours_unranked_and_without_a_paper_value(tmp_path, paper):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, "beauty", "pop", "default", seed, 0.8 + 0.04 * seed)  # the best numbers, yet not ranked
        write_run(runs, "beauty", "elcrec", "ELCRec", seed, 0.44 + 0.04 * seed)
        write_run(runs, "beauty", "iclrec", "default", seed, 0.26 + 0.04 * seed)
    result = tables.build(runs, tmp_path / "none", paper, [1, 2], REGISTERED | {"pop"})
    table1 = result["table1"].set_index(["dataset", "column", "metric"])
    pop = table1.loc[("beauty", "Pop", "HR@5")]
    assert pop["mean"] == pytest.approx(0.86) and pop["source"] == "ours" and pop["status"] == "ok"
    assert math.isnan(pop["paper"]) and math.isnan(pop["rank"]) and not pop["flag"]
    assert table1.loc[("beauty", "ELCRec", "HR@5"), "rank"] == 1  # Pop stays out of the ranking
    assert result["table1"]["column"].drop_duplicates().tolist()[0] == "Pop"  # the floor, first
    assert table1.loc[("sports", "Pop", "HR@5"), "status"] == "missing"  # registered, no run
    tests = result["table1_tests"].set_index(["dataset", "metric"])
    assert (tests.loc[("beauty", "HR@5"), "best"], tests.loc[("beauty", "HR@5"), "runner_up"]) == ("ELCRec", "ICLRec")
    assert "results/runs/sports/pop/default/seed1/metrics.json" in set(result["missing"]["target"])


def test_the_papers_own_pair_is_named_from_its_printed_improvement(built):
    _, result = built
    tests = result["table1_tests"].set_index(["dataset", "metric"])
    assert (tests["paper_method"] == "ELCRec").all()
    # beauty HR@5: 0.0529 vs ICLRec 0.0495 is the printed 6.87%; toys HR@5: ELCRec is second, 0.17% down on ICLRec
    assert tests.loc[("beauty", "HR@5"), "paper_baseline"] == "ICLRec"
    assert tests.loc[("toys", "HR@5"), "paper_baseline"] == "ICLRec"
    # sports NDCG@20: Caser's printed 0.178 (a typo for 0.0178) is the largest value, but 2.14% is
    # ELCRec 0.0286 over IOCRec 0.0280
    assert tests.loc[("sports", "NDCG@20"), "paper_baseline"] == "IOCRec"
    assert tests.loc[("sports", "HR@20"), "paper_baseline"] == "IOCRec"  # 0.0648 over 0.0641: 1.09%


def test_data_origin_covers_the_benchmarks_ml_1m_and_mind_small(built):
    _, result = built
    origin = result["data_origin"].set_index("dataset")
    assert set(origin.index) == {"beauty", "ml-1m", "mind-small"}  # only datasets with data
    assert origin.loc["beauty", "differs"] and origin.loc["beauty", "paper"] == "22363"
    assert origin.loc["ml-1m", ["ours", "paper", "differs"]].tolist() == [10, "6040", True]
    assert origin.loc["mind-small", ["ours", "paper", "differs"]].tolist() == [70, ">= 50000", True]
    assert result["table7"]["sequence_sha256"].iloc[0] == "ab" * 32


def test_data_with_the_papers_counts_is_not_called_other_data(tmp_path, paper):
    from elcrec.report import datasets

    folder = tmp_path / "sequences"
    folder.mkdir()
    stats = {"users": 22363, "items": 12101, "interactions": 198502, "avg_length": 8.9, "sparsity": 0.9993}
    (folder / "beauty.stats.json").write_text(json.dumps(stats | {"sequence_sha256": "x"}))
    raw = {"users": 6040, "items": 3706, "interactions": 1000209}
    (folder / "ml-1m.stats.json").write_text(json.dumps({"steps": {"raw": raw}}))
    (folder / "mind-small.stats.json").write_text(json.dumps({"steps": {"raw": {"users": 94057}}}))
    table6, table7 = datasets.statistics(folder, paper)
    origin = datasets.data_origin(table6, table7, folder).set_index("dataset")
    assert not origin["differs"].any() and set(origin.index) == {"beauty", "ml-1m", "mind-small"}


def test_ablation_sums_domains_and_efficiency(built, paper):
    runs, result = built
    ablation = result["table10"].set_index(["dataset", "variant"])
    metrics = [json.loads((runs / f"beauty/elcrec/B/seed{s}/metrics.json").read_text())["test"] for s in (1, 2)]
    assert ablation.loc[("beauty", "B"), "mean"] == pytest.approx(np.mean([sum(m.values()) for m in metrics]))
    assert ablation.loc[("beauty", "B+ICL"), "status"] == "missing"
    assert ablation.loc[("beauty", "B"), "paper"] == paper["table10_ablation"]["beauty"]["B"]
    assert set(result["table8"]["status"]) == {"missing"} and result["table9"]["dataset"].iloc[0] == "mind-small"
    efficiency = result["efficiency"].set_index(["dataset", "column"])
    assert efficiency.loc[("beauty", "ELCRec"), "seconds_per_epoch"] == 10.0
    assert efficiency.loc[("beauty", "ELCRec"), "training_seconds"] == 40.0  # the cost run, not the Table 1 runs
    assert efficiency.loc[("beauty", "ELCRec"), "mean_memory_mb"] == 384.0
    assert efficiency.loc[("beauty", "ICLRec"), "status"] == "missing"  # ICLRec has Table 1 runs but no cost run
    assert efficiency.loc[("beauty", "ELCRec"), "paper_time_s"] == 2922
    assert efficiency.loc[("beauty", "S3-Rec"), "status"] == "missing"
    # S3-Rec: pre-training (60 s) and fine-tuning (4 epochs of 10 s) together, each beside it; the mean
    # memory weighted by each stage's time, the larger peak
    s3rec = efficiency.loc[("sports", "S3-Rec")]
    assert (s3rec["training_seconds"], s3rec["pretraining_seconds"], s3rec["fine_tuning_seconds"]) == (
        100.0,
        60.0,
        40.0,
    )
    assert s3rec["mean_memory_mb"] == pytest.approx((256 * 60 + 384 * 40) / 100)
    assert s3rec["peak_memory_mb"] == 1024.0 and s3rec["seconds_per_epoch"] == 10.0
    assert math.isnan(efficiency.loc[("beauty", "ELCRec"), "pretraining_seconds"])  # no pre-training stage


def test_missing_runs_name_their_targets(built):
    _, result = built
    missing = result["missing"]
    sasrec = missing[(missing["model"] == "sasrec") & (missing["dataset"] == "beauty")]
    assert sasrec["target"].tolist() == [
        f"results/runs/beauty/sasrec/{variant}/seed{s}/metrics.json" for variant in ("default", "ce") for s in (1, 2)
    ]
    assert set(sasrec.loc[sasrec["variant"] == "ce", "table"]) == {"Beyond: cross-entropy"}
    assert set(missing.loc[missing["model"] == "bprmf", "status"]) == {"pending"}
    assert set(missing.loc[missing["model"] == "bprmf", "target"]) == {""}
    assert not (
        (missing["dataset"] == "beauty") & (missing["model"] == "elcrec") & (missing["variant"] == "ELCRec")
    ).any()
    assert {"Table 1", "Table 10", "Table 8", "Table 9", "Beyond: cross-entropy"} == set(missing["table"])


def test_provenance_rows_and_cell_ids(built):
    _, result = built
    runs = result["runs"]
    assert len(runs) == 10 and {"beauty--elcrec--cost", "beauty--elcrec--alpha-0_1"} <= set(runs["cell"])
    assert cell_id("beauty", "elcrec", "B+ICL") == "beauty--elcrec--B_ICL"
    row = runs[(runs["variant"] == "ELCRec") & (runs["seed"] == 1)].iloc[0]
    assert row["settings_hash"] == records.settings_hash({"masking": "zero", "alpha": 10, "clusters": 256})
    assert (row["code_version"], row["data_sha256"], row["peak_memory_mb"]) == ("v0-test", "ab" * 32, 512.0)


def test_tables_round_trip_through_csv(built, tmp_path):
    _, result = built
    tables.write(result, tmp_path / "tables")
    again = tables.read(tmp_path / "tables")
    assert set(again) == set(tables.TABLE_NAMES)
    assert again["table1"]["mean"].dropna().tolist() == pytest.approx(result["table1"]["mean"].dropna().tolist())


def test_no_runs_at_all_still_gives_every_table(tmp_path, paper):
    result = tables.build(tmp_path / "none", tmp_path / "none", paper, [1, 2, 3], REGISTERED)
    assert set(result) == set(tables.TABLE_NAMES) and len(result["runs"]) == 0
    assert set(result["table1"]["status"]) == {"missing", "pending"}
    assert set(result["table6"]["status"]) == {"missing"}
    assert len(result["missing"]) == len(result["missing"].drop_duplicates())


def test_released_checkpoints_beside_the_paper_row(tmp_path, built):
    _, result = built
    (tmp_path / "reference" / "beauty").mkdir(parents=True)
    printed = {"HR@5": 0.05294, "NDCG@5": 0.03546, "HR@20": 0.1079, "NDCG@20": 0.0511}  # NDCG@20 is not the paper's
    (tmp_path / "reference" / "beauty" / "metrics.json").write_text(json.dumps({"metrics": printed}))
    released = tables.released_checkpoints(tmp_path / "reference", result["table1"]).set_index(["dataset", "metric"])
    beauty = released.loc["beauty"]
    assert beauty["status"].tolist() == ["ok"] * 4 and beauty.loc["HR@5", "released"] == pytest.approx(0.05294)
    assert beauty["equals_paper"].tolist() == [True, True, True, False]  # HR@5, HR@20, NDCG@5 round to the paper's
    assert beauty.loc["HR@5", "ours_mean"] == pytest.approx(0.48) and beauty.loc["HR@5", "ours_seeds"] == 2
    assert set(released.loc["sports", "status"]) == {"missing"}


def test_a_diverged_run_is_present_listed_and_kept_out_of_every_number(tmp_path, paper):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, "beauty", "elcrec", "ELCRec", seed, 0.5)
        write_diverged_run(runs, "beauty", "sasrec", "default", seed)
    result = tables.build(runs, write_stats(tmp_path / "sequences"), paper, [1, 2], REGISTERED)
    table1 = result["table1"].set_index(["dataset", "column", "metric"])
    assert table1.loc[("beauty", "SASRec", "HR@5"), "status"] == "diverged"
    assert table1.loc[("beauty", "ELCRec", "HR@5"), "rank"] == 1  # the only ranked column
    missing = result["missing"]
    assert not (
        (missing["model"] == "sasrec") & (missing["dataset"] == "beauty") & (missing["variant"] == "default")
    ).any()
    diverged = result["diverged"]
    assert diverged["seed"].tolist() == [1, 2] and "epoch 4, step 7" in diverged["divergence"].iloc[0]
    assert set(result["runs"]["status"]) == {"ok", "diverged"}  # provenance lists them too


def test_runs_of_other_data_are_left_out_of_every_table_and_listed(tmp_path, paper):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, "beauty", "elcrec", "ELCRec", seed, 0.5)
    write_run(runs, "beauty", "elcrec", "k-2", 1, 0.9, settings={"clusters": 2}, data="cd" * 32)  # a smoke run's
    write_run(runs, "beauty", "sasrec", "default", 1, 0.9, data="cd" * 32)
    built = tables.build(runs, write_stats(tmp_path / "sequences"), paper, [1, 2], REGISTERED)
    foreign = built["foreign"]
    assert sorted(foreign["variant"]) == ["default", "k-2"] and set(foreign["current_sha256"]) == {"ab" * 32}
    assert foreign["reason"].str.contains("another sequence file").all()
    assert set(built["runs"]["variant"]) == {"ELCRec"}  # provenance, and so every table, without them
    sweep = built["sensitivity"]
    assert 2 not in set(sweep.loc[sweep["parameter"] == "k", "value"])  # the smoke run's point is not on the curve
    sasrec = built["table1"][(built["table1"]["dataset"] == "beauty") & (built["table1"]["model"] == "sasrec")]
    assert set(sasrec["status"]) == {"missing"}  # the cell waits for a run of the current data

"""report/evidence.py: curves, sensitivity points, masking evidence, named departures and the t-SNE maps."""

import numpy as np
import pytest
from conftest import REPO
from run_helpers import write_run
from scipy import stats as scipy_stats

from elcrec import stats
from elcrec.report import evidence, records, tables


@pytest.fixture
def runs(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, "beauty", "elcrec", "ELCRec", seed, 0.5)
    write_run(tmp_path, "beauty", "elcrec", "alpha-0.1", 1, 0.4, settings={"alpha": 0.1})
    write_run(tmp_path, "beauty", "elcrec", "k-64", 1, 0.3, settings={"clusters": 64}, other_masking=False)
    write_run(tmp_path, "beauty", "iclrec", "default", 1, 0.2)
    return records.run_records(tmp_path)


def test_convergence_takes_every_epoch_of_the_elcrec_runs(runs):
    curves = evidence.convergence(runs)
    assert len(curves) == 2 * 3 and curves["loss"].tolist()[:3] == pytest.approx([1.0, 0.9, 0.8])


def test_sensitivity_points_come_from_the_settings(runs):
    points = evidence.sensitivity(runs)
    alpha = points[points["parameter"] == "alpha"].groupby("value")["HR@5"].mean()
    assert alpha.to_dict() == pytest.approx({0.1: 0.4, 10.0: 0.5})  # the sweep run and the paper setting
    k = points[points["parameter"] == "k"]
    assert sorted(set(k["value"])) == [64.0, 256.0] and "iclrec" not in set(points["cell"].str.split("--").str[1])


def test_sensitivity_keeps_to_the_four_benchmarks(runs, tmp_path):
    write_run(tmp_path, "ml-1m", "elcrec", "ELCRec", 1, 0.6)  # Table 8's run: no sweep in the paper
    points = evidence.sensitivity(records.run_records(tmp_path))
    assert set(points["dataset"]) == {"beauty"}


def test_masking_evidence_pairs_both_modes(runs):
    masking = evidence.masking(runs).set_index(["variant", "metric"])
    row = masking.loc[("ELCRec", "HR@5")]
    assert row["exclude"] == pytest.approx(row["zero"] + 0.01) and row["seeds"] == 2
    assert ("k-64", "HR@5") not in masking.index  # that run recorded one masking only


def test_departures_sit_beside_their_table1_column(tmp_path):
    paper = stats.load_paper(REPO / "config" / "paper.yaml")
    for seed in (1, 2):
        write_run(tmp_path, "beauty", "bprmf", "default", seed, 0.2)
        write_run(tmp_path, "beauty", "bprmf", "lr1e-3", seed, 0.3 + 0.02 * seed)
    write_run(tmp_path, "beauty", "bprmf", "cost", 1, 0.9)  # a timing run, not a departure
    write_run(tmp_path, "beauty", "elcrec", "ELCRec", 1, 0.5)
    write_run(tmp_path, "beauty", "elcrec", "random-init", 1, 0.4, settings={"centre_init": "random"})
    write_run(tmp_path, "beauty", "elcrec", "B", 1, 0.1)  # Table 10's, not a departure
    write_run(tmp_path, "beauty", "elcrec", "alpha-0.1", 1, 0.1, settings={"alpha": 0.1})  # Figure 2's
    write_run(tmp_path, "beauty", "caser", "e300", 1, 0.3)  # no run of its official column
    runs = records.run_records(tmp_path)
    table1, _ = tables.table1(runs, stats.collect_runs(tmp_path), paper, {"bprmf", "caser", "elcrec"}, 5.0)
    skip = (tables.COST_VARIANT, *tables.ABLATION_VARIANTS)
    found = evidence.departures(runs, table1, skip).set_index(["dataset", "model", "variant", "metric"])
    expected = {("beauty", "bprmf", "lr1e-3"), ("beauty", "caser", "e300"), ("beauty", "elcrec", "random-init")}
    assert set(found.index.droplevel("metric")) == expected and len(found) == 3 * 4
    row = found.loc[("beauty", "bprmf", "lr1e-3", "HR@5")]
    assert row["mean"] == pytest.approx(0.33) and row["seeds"] == 2 and row["official_variant"] == "default"
    assert row["official_mean"] == pytest.approx(0.2) and row["paper"] == pytest.approx(0.0212)
    assert row["cell"] != row["official_cell"]

    def hits(variant):  # paired over users: the per-user HR@5 averaged over each side's seeds
        ranks = [np.load(tmp_path / f"beauty/bprmf/{variant}/seed{seed}/user_ranks.npz")["test"] for seed in (1, 2)]
        return np.mean([r < 5 for r in ranks], axis=0)

    assert row["wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(hits("lr1e-3"), hits("default")).pvalue)
    assert row["wilcoxon"] < 0.05 and row["wilcoxon"] <= row["wilcoxon_holm"] <= min(1.0, 8 * row["wilcoxon"])
    caser = found.loc[("beauty", "caser", "e300", "HR@5")]
    assert np.isnan(caser["official_mean"]) and np.isnan(caser["wilcoxon"]) and np.isnan(caser["wilcoxon_holm"])
    row = found.loc[("beauty", "elcrec", "random-init", "HR@5")]
    assert (row["mean"], row["official_mean"]) == pytest.approx((0.4, 0.5)) and row["official_variant"] == "ELCRec"
    assert row["paper"] == pytest.approx(0.0529)
    assert evidence.departures(runs.iloc[0:0], table1, skip).empty


def test_tsne_of_the_first_seed_at_three_snapshots(runs):
    tsne = evidence.tsne(runs)
    assert set(tsne["dataset"]) == {"beauty"} and set(tsne["seed"]) == {1}  # first ELCRec seed only
    assert tsne.groupby("panel")["label"].first().tolist() == ["epoch 0", "epoch 1", "best (epoch 2)"]
    assert len(tsne) == 3 * 40 and set(tsne["intent"]) == {0, 1}
    # two well-separated intents stay apart in the map: centroid distance exceeds the spread
    last = tsne[tsne["panel"] == 2]
    centres = last.groupby("intent")[["x", "y"]].mean()
    spread = last.groupby("intent")[["x", "y"]].std().to_numpy().max()
    assert np.linalg.norm(centres.iloc[0] - centres.iloc[1]) > 2 * spread


def test_exact_tsne_is_deterministic_and_keeps_clusters_apart():
    generator = np.random.default_rng(0)
    points = np.concatenate([generator.normal(size=(30, 16)), generator.normal(size=(30, 16)) + 4.0])
    first, again = evidence.tsne_2d(points, perplexity=10, iterations=400), evidence.tsne_2d(points, 10, 400)
    assert first.shape == (60, 2) and np.array_equal(first, again)
    gap = np.linalg.norm(first[:30].mean(0) - first[30:].mean(0))
    assert gap > 2 * max(first[:30].std(0).max(), first[30:].std(0).max())

"""official/dcrec.py: our DCRec against a training step of HKUDS/DCRec's (DGL 1.1.1) and its full score
matrix, the official edge dropouts and KL prior replayed (tests/data/official/dcrec_train)."""

import pytest
import torch

import elcrec.models.dcrec as dcrec
from elcrec.official import dcrec as official_dcrec
from elcrec.official.common import load_fixture
from elcrec.settings import model_defaults

FIXTURE = official_dcrec.CHECK["fixture"]


def test_the_three_losses_every_gradient_and_the_scores_equal_the_official_code_s():
    fixture, record = load_fixture(FIXTURE)
    assert record["repository"] == "HKUDS/DCRec" and record["commit"].startswith("23382332")
    assert official_dcrec.CHECK["weights"] is None
    result = official_dcrec.check(fixture, record, None, None, None)
    assert result["within_tolerance"] and result["scores"]["within"]
    assert set(result["losses"]) == {"next_item", "graph_cl", "kl", "total"} and result["gradients"] == 40
    assert result["losses"]["total"]["official"] == pytest.approx(4.034947, abs=1e-5)
    assert fixture["scores"].shape == (8, record["vocab"])  # every item row, not the 101 sampled candidates


def test_our_graphs_are_the_official_ones_but_for_ties_among_similarities():
    fixture, record = load_fixture(FIXTURE)
    graphs = official_dcrec.check(fixture, record)["graphs"]
    for name in ("train_adjacency", "eval_adjacency"):  # edge for edge (the official padding diagonal aside)
        assert (
            graphs[name]["rows_with_other_columns"] == 0 and graphs[name]["official_edges"] == graphs[name]["our_edges"]
        )
        assert graphs[name]["official_padding_diagonal"] == 1.0
    for name in ("train_similarity", "eval_similarity"):  # the same weights in every row; columns may differ
        assert graphs[name]["largest_weight_difference"] < 1e-6 and graphs[name]["out_degrees_equal"]
        assert graphs[name]["rows_with_other_columns"] > 0 and graphs[name]["official_zero_weight_edges"] > 0
    # the departure switched off: on our own similarity graphs the comparison differs
    assert not official_dcrec.with_our_graphs(fixture, record)["within_tolerance"]


def test_our_self_loop_weight_is_the_one_the_official_dgl_gives(monkeypatch):
    fixture, record = load_fixture(FIXTURE)
    assert record["dgl_version"] == "1.1.1" and record["self_loop_weight"] == 1.0
    assert model_defaults("dcrec")["self_loop_weight"] == record["self_loop_weight"]
    settings = official_dcrec.settings
    monkeypatch.setattr(official_dcrec, "settings", lambda record: settings(record) | {"self_loop_weight": 0.0})
    assert not official_dcrec.check(fixture, record)["within_tolerance"]  # DGL <= 0.9.0's zero-weight loops


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch):
    fixture, record = load_fixture(FIXTURE)
    original = dcrec.rowwise_info_nce
    monkeypatch.setattr(dcrec, "rowwise_info_nce", lambda *args: original(*args) * 1.001)
    result = official_dcrec.check(fixture, record)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-4


def test_a_changed_reduction_of_the_kl_is_caught(monkeypatch):
    """KL summed instead of divided by the batch ("batchmean", dcrec.py:29)."""
    fixture, record = load_fixture(FIXTURE)
    original = dcrec.weight_prior_kl
    monkeypatch.setattr(dcrec, "weight_prior_kl", lambda prior, weights: original(prior, weights) * len(weights))
    assert not official_dcrec.check(fixture, record)["within_tolerance"]


def test_a_changed_score_is_caught(monkeypatch):
    fixture, record = load_fixture(FIXTURE)
    model = official_dcrec.with_official_weights(fixture, record)
    original = model.score
    monkeypatch.setattr(model, "score", lambda batch: original(batch) + 1e-3 * torch.ones(1))
    result = official_dcrec.differences(model, fixture)
    assert not result["scores"]["within"] and not result["within_tolerance"]

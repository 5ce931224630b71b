"""official/sasrec.py: our SASRec against a training step of the ICLRec code base's (salesforce/ICLRec,
contrast type none: the next-item BCE alone) and its full-ranking scores (tests/data/official/sasrec_train)."""

import pytest
import torch

from elcrec.official import sasrec as official_sasrec
from elcrec.official.common import load_fixture

FIXTURE = official_sasrec.CHECK["fixture"]


def test_the_next_item_bce_every_gradient_and_the_scores_equal_the_official_code_s():
    fixture, record = load_fixture(FIXTURE)
    assert record["repository"] == "salesforce/ICLRec" and record["commit"].startswith("2890e6c3")
    assert record["contrast_type"] == "none" and official_sasrec.CHECK["weights"] is None
    result = official_sasrec.check(fixture, record, None, None, None)
    assert result["within_tolerance"] and result["scores"]["within"]
    assert set(result["losses"]) == {"next_item", "total"} and result["gradients"] == 36
    assert result["losses"]["total"]["official"] == pytest.approx(1.39126, abs=1e-5)


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch):
    import elcrec.models.base as base

    fixture, record = load_fixture(FIXTURE)
    original = base.next_item_loss
    monkeypatch.setattr(base, "next_item_loss", lambda *args: original(*args) * 1.001)
    result = official_sasrec.check(fixture, record)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-4


def test_a_changed_reduction_is_caught_too(monkeypatch):
    """The mean over every position, padding included, instead of over the targets."""
    import elcrec.models.losses as losses

    fixture, record = load_fixture(FIXTURE)
    original = losses.next_item_bce

    def over_every_position(outputs, embedding, batch):
        return original(outputs, embedding, batch) * (batch["target"] > 0).sum() / batch["target"].numel()

    monkeypatch.setattr(losses, "next_item_bce", over_every_position)
    assert not official_sasrec.check(fixture, record)["within_tolerance"]


def test_a_changed_score_is_caught(monkeypatch):
    fixture, record = load_fixture(FIXTURE)
    model = official_sasrec.with_official_weights("sasrec", fixture, record)
    original = model.score
    monkeypatch.setattr(model, "score", lambda batch: original(batch) + 1e-3 * torch.ones(1))
    result = official_sasrec.differences(model, fixture, official_sasrec.LOSSES)
    assert not result["scores"]["within"] and not result["within_tolerance"]

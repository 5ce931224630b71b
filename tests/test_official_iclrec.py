"""official/iclrec.py: our ICLRec against a training step of salesforce/ICLRec (Hybrid), its faiss
k-means intents handed to ours (tests/data/official/iclrec_train)."""

import pytest
import torch

from elcrec.official import iclrec as official_iclrec
from elcrec.official.common import load_fixture

FIXTURE = official_iclrec.CHECK["fixture"]


def test_the_losses_every_gradient_the_intents_and_the_scores_equal_the_official_code_s():
    fixture, record = load_fixture(FIXTURE)
    assert record["repository"] == "salesforce/ICLRec" and record["commit"].startswith("2890e6c3")
    assert record["contrast_type"] == "Hybrid" and official_iclrec.CHECK["weights"] is None
    result = official_iclrec.check(fixture, record, None, None, None)
    assert result["within_tolerance"] and result["scores"]["within"] and result["intent_assignments_equal"]
    assert set(result["losses"]) == {"next_item", "instance_cl", "intent_cl", "total"}
    assert result["gradients"] == 36
    assert result["losses"]["intent_cl"]["official"] == pytest.approx(3.93741, abs=1e-4)
    # more than one intent in the batch, so the intent CL has negatives of other intents
    assert len(set(fixture["kmeans/intent_ids"].tolist())) > 1


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch):
    import elcrec.models.iclrec as ours

    fixture, record = load_fixture(FIXTURE)
    original = ours.intent_info_nce
    monkeypatch.setattr(ours, "intent_info_nce", lambda *args: original(*args) * 1.001)
    result = official_iclrec.check(fixture, record)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-4


def test_contrasting_with_the_raw_centroids_is_caught():
    """The intents are the L2-normalised centroids (models.py:71); the raw ones differ."""
    fixture, record = load_fixture(FIXTURE)
    model = official_iclrec.with_official_intents(fixture, record)
    model.intents.copy_(torch.from_numpy(fixture["kmeans/centroids_raw"]))
    result = official_iclrec.differences(model, fixture, official_iclrec.LOSSES)
    assert not result["within_tolerance"] and result["losses"]["intent_cl"]["share"] > 1e-3

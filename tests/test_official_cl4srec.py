"""official/cl4srec.py: our CL4SRec against a training step of the ICLRec code base's InstanceCL
(salesforce/ICLRec; tests/data/official/cl4srec_train)."""

import pytest

from elcrec.official import cl4srec as official_cl4srec
from elcrec.official.common import load_fixture

FIXTURE = official_cl4srec.CHECK["fixture"]


def test_the_losses_every_gradient_and_the_scores_equal_the_official_code_s():
    fixture, record = load_fixture(FIXTURE)
    assert record["repository"] == "salesforce/ICLRec" and record["commit"].startswith("2890e6c3")
    assert record["contrast_type"] == "InstanceCL" and official_cl4srec.CHECK["weights"] is None
    result = official_cl4srec.check(fixture, record, None, None, None)
    assert result["within_tolerance"] and result["scores"]["within"]
    assert set(result["losses"]) == {"next_item", "instance_cl", "total"} and result["gradients"] == 36
    assert result["losses"]["instance_cl"]["official"] == pytest.approx(16.19186, abs=1e-4)


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch):
    import elcrec.models.cl4srec as ours

    fixture, record = load_fixture(FIXTURE)
    original = ours.flattened_info_nce
    monkeypatch.setattr(ours, "flattened_info_nce", lambda *args: original(*args) * 1.001)
    result = official_cl4srec.check(fixture, record)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-4

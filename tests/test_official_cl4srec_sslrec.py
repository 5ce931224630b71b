"""official/cl4srec_sslrec.py: CL4SRec's `architecture: sslrec` against a step of the code the paper's
Table 12 names for CL4SRec (HKUDS/SSLRec; tests/data/official/cl4srec_sslrec_train)."""

import pytest
import torch

import elcrec.models.cl4srec as our_cl4srec
import elcrec.models.sslrec as sslrec
from elcrec.official import OFFICIAL_CODE
from elcrec.official import cl4srec_sslrec as official_sslrec
from elcrec.official.common import load_fixture


@pytest.fixture(scope="module")
def fixture():
    return load_fixture(official_sslrec.CHECK["fixture"])


def test_each_loss_every_gradient_and_the_scores_equal_the_official_code_s(fixture):
    arrays, record = fixture
    assert record["commit"] in OFFICIAL_CODE[official_sslrec.CHECK["model"]] and record["mode"].startswith("eval")
    result = official_sslrec.check(arrays, record)
    assert result["within_tolerance"] and result["scores"]["within"] and result["gradients"] == 34
    assert set(result["losses"]) == {"next_item", "weighted_cl", "total"}
    assert result["losses"]["total"]["official"] == pytest.approx(3.70625, abs=1e-5)
    assert (arrays["views/one"] != arrays["batch/seqs"]).any()  # its own augmentations, handed to ours


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch, fixture):
    original = our_cl4srec.info_nce
    monkeypatch.setattr(our_cl4srec, "info_nce", lambda *args: original(*args) * 1.001)
    result = official_sslrec.check(*fixture)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-5


def test_the_mask_row_as_a_class_is_caught(monkeypatch, fixture):
    """The cross-entropy over every row (the mask id a class too), not rows 0..items."""

    def over_every_row(self, batch):
        size = batch["input"].shape[0]
        states = self.backbone(torch.cat([batch["input"], batch["views"]]))[:, -1]
        logits = states[:size] @ self.backbone.item_embedding.weight.T
        next_item = torch.nn.functional.cross_entropy(logits, batch["target"][:, -1])
        instance = our_cl4srec.info_nce(*states[size:].chunk(2), self.temperature)
        return {"next_item": next_item, "instance_cl": instance, "total": next_item + self.instance_weight * instance}

    monkeypatch.setattr(our_cl4srec.CL4SRec, "sslrec_loss", over_every_row)
    assert not official_sslrec.check(*fixture)["within_tolerance"]


def test_a_causal_mask_is_caught(monkeypatch, fixture):
    """SSLRec masks padded keys only; a causal mask as well changes every score."""
    original = sslrec.SSLRecLayer.forward

    def causal(self, states, key_padding):
        length = states.shape[1]
        future = torch.ones(length, length, dtype=torch.bool).triu(1)[None, None]
        return original(self, states, key_padding | future)

    monkeypatch.setattr(sslrec.SSLRecLayer, "forward", causal)
    assert not official_sslrec.check(*fixture)["scores"]["within"]

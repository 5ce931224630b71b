"""official/bprmf.py: our BPR-MF against the NGCF repository's TensorFlow BPR-MF (fixture
tests/data/official/bprmf_train, made by workflow/scripts/official/bprmf_train.py), its RMSProp steps
included."""

import torch

from elcrec import optimisation
from elcrec.models import bprmf as our_bprmf
from elcrec.official import bprmf as official_bprmf
from elcrec.official.common import load_fixture


def test_bpr_l2_total_gradients_and_scores_equal_the_official_code_s():
    fixture, record = load_fixture(official_bprmf.CHECK["fixture"])
    assert record["commit"] == "a718a4f2df7c3942ca0df6759926975762c61eed"
    found = official_bprmf.check(fixture, record)
    assert found["within_tolerance"], found
    assert set(found["losses"]) == {"bpr", "l2", "total"} and found["gradients"] == 2
    assert found["scores"]["within"] and found["largest_loss_share"] < 1e-5
    assert found["optimiser"]["steps"] == 3 and found["optimiser"]["within"]
    for table in found["optimiser"]["tables"].values():  # the tables moved, and as the official ones did
        assert table["largest"] > 1e-4 and table["difference"] < 1e-4 * table["largest"]


def test_an_rmsprop_unlike_tensorflow_1_s_is_caught(monkeypatch):
    fixture, record = load_fixture(official_bprmf.CHECK["fixture"])

    class SlowerDecay(optimisation.TF1RMSProp):  # torch's default alpha 0.99 instead of TF's decay 0.9
        def __init__(self, params, lr):
            super().__init__(params, lr, decay=0.99)

    class FromZero(optimisation.TF1RMSProp):  # the mean square from 0 (torch's), not TF1's ones
        def step(self, closure=None):
            for group in self.param_groups:
                for parameter in group["params"]:
                    self.state[parameter].setdefault("mean_square", torch.zeros_like(parameter))
            super().step(closure)

    for wrong in (SlowerDecay, FromZero):
        monkeypatch.setattr(optimisation, "TF1RMSProp", wrong)
        found = official_bprmf.check(fixture, record)
        assert not found["optimiser"]["within"] and not found["within_tolerance"]


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch):
    fixture, record = load_fixture(official_bprmf.CHECK["fixture"])
    # the L2 term without tf.nn.l2_loss's halving (what ours computed before the check)
    original = our_bprmf.BPRMF.loss

    def unhalved(self, batch):
        losses = original(self, batch)
        return losses | {"l2": losses["l2"] * 2, "total": losses["bpr"] + losses["l2"] * 2}

    monkeypatch.setattr(our_bprmf.BPRMF, "loss", unhalved)
    assert not official_bprmf.check(fixture, record)["within_tolerance"]
    # a factor 1.001 on the BPR term
    logsigmoid = torch.nn.functional.logsigmoid
    monkeypatch.setattr(our_bprmf.functional, "logsigmoid", lambda margin: logsigmoid(margin) * 1.001)
    monkeypatch.setattr(our_bprmf.BPRMF, "loss", original)
    found = official_bprmf.check(fixture, record)
    assert not found["within_tolerance"] and found["losses"]["bpr"]["share"] > 5e-4

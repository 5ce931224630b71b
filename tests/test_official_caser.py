"""official/caser.py: our Caser against graytowne/caser_pytorch's numbers (tests/data/official/caser_train):
one training step on the official windows with the same negatives and dropout masks, every gradient,
the eval scores; a one-line change of our loss, or windows that are not the official ones, are caught."""

import pytest
import torch
from torch.nn import functional

import elcrec.models.caser as our_caser
from elcrec import ElcrecError
from elcrec.official import caser as official_caser
from elcrec.official.common import load_fixture


@pytest.fixture
def fixture():
    torch.set_num_threads(1)
    return load_fixture(official_caser.CHECK["fixture"])


def test_caser_s_training_step_and_scores_equal_the_official_code_s(fixture):
    arrays, record = fixture
    assert (record["repository"], record["commit"]) == (
        "graytowne/caser_pytorch",
        "c4e10e4c12f0fce8a0cba12008b3aff5d07a26d1",
    )
    result = official_caser.check(arrays, record, None)
    assert result["within_tolerance"] and result["examples_equal"] and result["scores"]["within"]
    assert set(result["losses"]) == {"positive", "negative", "total"} and result["gradients"] == 18
    assert result["largest_loss_share"] < 1e-5 and result["scores"]["largest"] > 0
    assert len(arrays["batch_targets"]) == record["windows"] == 14


class ScaledLogsigmoid:
    """torch.nn.functional, but logsigmoid 0.1 % larger."""

    def __getattr__(self, name):
        return getattr(functional, name)

    @staticmethod
    def logsigmoid(logits):
        return functional.logsigmoid(logits) * 1.001


def test_a_one_line_change_to_our_loss_is_caught(fixture, monkeypatch):
    arrays, record = fixture
    monkeypatch.setattr(our_caser, "functional", ScaledLogsigmoid())
    found = official_caser.check(arrays, record, None)
    assert not found["within_tolerance"] and found["largest_loss_share"] > 5e-4


def test_windows_that_are_not_the_official_ones_are_refused(fixture, monkeypatch):
    arrays, record = fixture
    windows = our_caser.sliding_windows

    def one_item_earlier(items, size):
        rows, starts = windows(items, size)
        return rows, starts - 1

    monkeypatch.setattr(our_caser, "sliding_windows", one_item_earlier)
    with pytest.raises(ElcrecError, match="are not the official ones"):
        official_caser.check(arrays, record, None)


def test_every_official_parameter_has_our_name():
    assert official_caser.rename("conv_h.4.bias") == "horizontal.4.bias"
    assert official_caser.rename("W2.weight") == "output_weights.weight"
    with pytest.raises(ElcrecError, match="unexpected official parameter"):
        official_caser.rename("fc2.weight")

"""official/gru4rec.py: our GRU4Rec against the code the paper's Table 12 names
(slientGe/Sequential_Recommendation_Tensorflow, TensorFlow 1; fixture tests/data/official/gru4rec_train,
made by workflow/scripts/official/gru4rec_train.py): its windows, one step's loss, gradients and
global norm, and its scores."""

import pytest
import torch

from elcrec.data import batches
from elcrec.models import gru4rec as our_gru4rec
from elcrec.official import OFFICIAL_CODE
from elcrec.official import gru4rec as official_gru4rec
from elcrec.official.common import load_fixture


@pytest.fixture(scope="module")
def fixture():
    return load_fixture(official_gru4rec.CHECK["fixture"])


def test_windows_loss_gradients_norm_and_scores_equal_the_official_code_s(fixture):
    arrays, record = fixture
    assert f"{record['repository'].removeprefix('github.com/')} @ {record['commit']}" == OFFICIAL_CODE[
        "gru4rec"
    ].removesuffix(" (TF)")
    found = official_gru4rec.check(arrays, record)
    assert found["within_tolerance"], found
    assert found["windows"] == {"ours": 67, "official": 67, "equal": True}
    assert found["gradients"] == 7 and found["scores"]["within"] and found["largest_loss_share"] < 1e-6
    assert found["losses"]["total"]["official"] == pytest.approx(10.66677, abs=1e-4)
    assert found["global_norm"]["ours"] == pytest.approx(found["global_norm"]["official"], rel=1e-5)


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch, fixture):
    arrays, record = fixture
    logsigmoid = torch.nn.functional.logsigmoid
    monkeypatch.setattr(our_gru4rec.functional, "logsigmoid", lambda margin: logsigmoid(margin) * 1.001)
    assert not official_gru4rec.check(arrays, record)["within_tolerance"]


def test_a_mean_over_windows_instead_of_the_official_sum_is_caught(monkeypatch, fixture):
    arrays, record = fixture
    original = our_gru4rec.GRU4Rec.loss

    def averaged(self, batch):
        value = original(self, batch)["total"] / len(batch["input"])
        return {"bpr": value, "total": value}

    monkeypatch.setattr(our_gru4rec.GRU4Rec, "loss", averaged)
    assert not official_gru4rec.check(arrays, record)["within_tolerance"]


def test_pytorch_s_gru_reset_gate_is_caught(monkeypatch, fixture):
    """The reset gate on the recurrent product (nn.GRU) instead of on the state (TF 1's GRUCell)."""
    arrays, record = fixture

    def forward(self, inputs):
        state, outputs, size = inputs.new_zeros(len(inputs), self.hidden_size), [], inputs.shape[2]
        for step in range(inputs.shape[1]):
            x = inputs[:, step]
            gates = torch.sigmoid(torch.cat([x, state], 1) @ self.gate_kernel + self.gate_bias)
            reset, update = gates.chunk(2, dim=1)
            recurrent = reset * (state @ self.candidate_kernel[size:])
            candidate = torch.tanh(x @ self.candidate_kernel[:size] + recurrent + self.candidate_bias)
            state = update * state + (1 - update) * candidate
            outputs.append(state)
        return torch.stack(outputs, 1)

    monkeypatch.setattr(our_gru4rec.TFGRUCell, "forward", forward)
    assert not official_gru4rec.check(arrays, record)["within_tolerance"]


def test_windows_one_item_shorter_are_caught(monkeypatch, fixture):
    arrays, record = fixture
    original = batches.window_batches
    monkeypatch.setattr(batches, "window_batches", lambda data, size, generator, window, negatives: original(
        data, size, generator, window - 1, negatives
    ))
    found = official_gru4rec.check(arrays, record)
    assert not found["windows"]["equal"] and not found["within_tolerance"]

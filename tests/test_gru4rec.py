"""models/gru4rec.py: TensorFlow 1's GRU cell by hand, the last window, the BPR and CE losses by hand,
defaults and options (the official code's own numbers: test_official_gru4rec.py)."""

import math

import pytest
import torch
from model_helpers import VOCAB, settings_for

from elcrec import ElcrecError
from elcrec.models.gru4rec import TFGRUCell
from elcrec.models.registry import build


def test_the_tf1_gru_cell_by_hand():
    torch.manual_seed(0)
    cell = TFGRUCell(2, 3)
    inputs = torch.randn(1, 2, 2)
    state = torch.zeros(3)
    for x in inputs[0]:
        gates = torch.sigmoid(torch.cat([x, state]) @ cell.gate_kernel + cell.gate_bias)
        reset, update = gates[:3], gates[3:]
        candidate = torch.tanh(torch.cat([x, reset * state]) @ cell.candidate_kernel + cell.candidate_bias)
        state = update * state + (1 - update) * candidate
    assert torch.allclose(cell(inputs)[0, -1], state, atol=1e-6)
    assert torch.equal(cell.gate_bias.detach(), torch.ones(6)) and torch.equal(cell.candidate_bias, torch.zeros(3))
    bound = math.sqrt(6 / (5 + 6))  # glorot over [input + hidden, 2 hidden]
    assert float(cell.gate_kernel.detach().abs().max()) <= bound


def test_only_the_last_window_is_read():
    torch.manual_seed(0)
    model = build("gru4rec", VOCAB, settings_for("gru4rec", window=3)).eval()
    long = model.score({"input": torch.tensor([[1, 2, 3, 4, 5]])})
    last = model.score({"input": torch.tensor([[0, 0, 3, 4, 5]])})
    assert torch.equal(long, last)
    short = model.score({"input": torch.tensor([[4, 5]])})  # narrower than the window: padding in front
    assert torch.allclose(short, model.score({"input": torch.tensor([[0, 4, 5]])}))
    assert torch.equal(model.item_embedding.weight[0], torch.zeros(8))


def test_bpr_is_each_window_s_mean_over_its_negatives_summed_over_windows():
    model = build("gru4rec", 4, settings_for("gru4rec", window=2, dropout=0.0)).eval()
    batch = {
        "input": torch.tensor([[1, 2], [2, 3]]),
        "target": torch.tensor([[3], [1]]),
        "negatives": torch.tensor([[1, 2], [2, 3]]),
    }
    states = model.encode(batch["input"])
    scores = states @ model.output_weights.weight.T + model.output_bias.weight[:, 0]
    expected = 0.0
    for row, target, negatives in ((0, 3, (1, 2)), (1, 1, (2, 3))):
        margins = [float(scores[row, target] - scores[row, negative]) for negative in negatives]
        expected += sum(math.log(1 + math.exp(-margin)) for margin in margins) / 2
    losses = model.loss(batch)
    assert set(losses) == {"bpr", "total"} and float(losses["total"].detach()) == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_option_by_hand():
    model = build("gru4rec", 4, settings_for("gru4rec", loss="ce", dropout=0.0, window=2))
    with torch.no_grad():
        model.output_weights.weight.zero_()  # logits = the output biases
        model.output_bias.weight.copy_(torch.tensor([[0.0], [1.0], [2.0], [0.0]]))
    batch = {"input": torch.tensor([[1, 2], [0, 3]]), "target": torch.tensor([[3], [1]])}
    log_total = math.log(1 + math.e + math.e**2 + 1)
    expected = ((log_total - 0) + (log_total - 1)) / 2
    losses = model.loss(batch)
    assert set(losses) == {"ce", "total"} and float(losses["total"].detach()) == pytest.approx(expected)


def test_defaults_are_the_official_loop_s_and_bad_loss():
    settings = settings_for("gru4rec")
    official = ("bpr", 0.3, 5, 10, "windows", 500, 5.0, 30, 0.001)
    keys = ("loss", "dropout", "window", "negatives", "batch_unit", "batch_size", "clip_norm", "epochs", "lr")
    assert tuple(settings[key] for key in keys) == official
    with pytest.raises(ElcrecError, match="loss must be one of"):
        build("gru4rec", VOCAB, settings_for("gru4rec", loss="top1"))

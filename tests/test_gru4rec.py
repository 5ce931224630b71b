"""models/gru4rec.py: padding never reaches the GRU, the BPR and CE losses by hand, options."""

import math

import pytest
import torch
from model_helpers import VOCAB, settings_for

from elcrec import ElcrecError
from elcrec.models.gru4rec import bpr_sampled, left_aligned, right_aligned
from elcrec.models.registry import build


def test_alignment_round_trip():
    inputs = torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4], [0, 0, 0, 7]])
    lengths = (inputs > 0).sum(dim=1)
    assert left_aligned(inputs, lengths).tolist() == [[3, 4, 0, 0], [1, 2, 3, 4], [7, 0, 0, 0]]
    states = left_aligned(inputs, lengths)[:, :, None].float()
    assert right_aligned(states, lengths, 4)[:, :, 0].long().tolist() == [[0, 0, 3, 4], [1, 2, 3, 4], [0, 0, 0, 7]]


def test_padding_does_not_change_the_states():
    torch.manual_seed(0)
    model = build("gru4rec", VOCAB, settings_for("gru4rec")).eval()
    short, _ = model.encode(torch.tensor([[3, 4, 5]]))
    padded, last = model.encode(torch.tensor([[0, 0, 3, 4, 5], [0, 0, 0, 0, 0]]))
    assert torch.allclose(padded[0, 2:], short[0], atol=1e-6) and torch.equal(padded[0, :2], torch.zeros(2, 8))
    assert torch.allclose(last[0], short[0, -1], atol=1e-6)
    assert torch.equal(last[1], torch.zeros(8))  # a row without items stays zero
    scores = model.score({"input": torch.tensor([[0, 0, 3, 4, 5]])})
    expected = short[0, -1] @ model.output_weights.weight.T + model.output_bias.weight[:, 0]
    assert torch.allclose(scores[0], expected, atol=1e-6)


def test_bpr_over_shared_negatives_by_hand():
    weights = torch.nn.Embedding(4, 2)
    bias = torch.nn.Embedding(4, 1)
    with torch.no_grad():
        weights.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        bias.weight.copy_(torch.tensor([[0.0], [0.5], [0.0], [-1.0]]))
    outputs = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # scores: position 0 -> item1 2.5, item2 0, item3 1; position 1 -> item1 0.5, item2 1, item3 0
    loss = bpr_sampled(outputs, torch.tensor([1, 2]), torch.tensor([2, 3]), weights, bias)
    terms = [2.5 - 0.0, 2.5 - 1.0, 1.0 - 1.0, 1.0 - 0.0]
    expected = sum(math.log(1 + math.exp(-margin)) for margin in terms) / 4
    assert float(loss.detach()) == pytest.approx(expected)


def test_cross_entropy_option_by_hand():
    model = build("gru4rec", 4, settings_for("gru4rec", loss="ce", dropout=0.0))
    with torch.no_grad():
        model.output_weights.weight.zero_()  # logits = the output biases
        model.output_bias.weight.copy_(torch.tensor([[0.0], [1.0], [2.0], [0.0]]))
    batch = {"input": torch.tensor([[0, 1, 2], [0, 0, 3]]), "target": torch.tensor([[0, 2, 3], [0, 0, 1]])}
    losses = model.loss(batch)
    log_total = math.log(1 + math.e + math.e**2 + 1)
    expected = ((log_total - 2) + (log_total - 0) + (log_total - 1)) / 3
    assert set(losses) == {"ce", "total"} and float(losses["total"].detach()) == pytest.approx(expected)


def test_defaults_and_bad_loss():
    settings = settings_for("gru4rec")
    assert (settings["loss"], settings["dropout"], settings["hidden_size"]) == ("bpr", 0.3, 8)
    with pytest.raises(ElcrecError, match="loss must be one of"):
        build("gru4rec", VOCAB, settings_for("gru4rec", loss="top1"))

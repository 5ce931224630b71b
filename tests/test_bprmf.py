"""models/bprmf.py: the BPR loss on a hand-checked example, user-id scores, official defaults."""

import math

import pytest
import torch
from model_helpers import VOCAB, settings_for

from elcrec import ElcrecError
from elcrec.models.registry import build


def test_bpr_loss_by_hand():
    model = build("bprmf", 6, settings_for("bprmf", hidden_size=2, l2=0.5), n_users=2)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.item_embedding.weight.copy_(torch.tensor([[0, 0], [1, 1], [2, 0], [0, 1], [1, 0], [0, 0]]).float())
    # user 1: inputs 1, 3 and targets 3, 4 (interactions 1, 3, 4); user 0: input 2, target 4; 0 = padding
    batch = {
        "users": torch.tensor([1, 0]),
        "input": torch.tensor([[1, 3], [0, 2]]),
        "target": torch.tensor([[3, 4], [0, 4]]),
        "negative": torch.tensor([[2, 5], [0, 5]]),
    }
    losses = {name: value.detach() for name, value in model.loss(batch).items()}
    # pairs: targets with their negatives, then each first input with the first position's negative
    # user 1 (0, 2): 3 vs 2 -> 2 - 0; 4 vs 5 -> 0 - 0; 1 vs 2 -> 2 - 0; user 0 (1, 0): 4 vs 5 -> 1; 2 vs 5 -> 2
    margins = [2, 0, 1, 2, 2]
    expected_bpr = sum(math.log(1 + math.exp(-margin)) for margin in margins) / 5
    assert float(losses["bpr"]) == pytest.approx(expected_bpr)
    # l2 per triple |u|^2 + |i|^2 + |j|^2: 4+1+4, 4+1+0, 1+1+0, 4+2+4, 1+4+0 -> mean 31/5, times 0.5
    assert float(losses["l2"]) == pytest.approx(0.5 * 31 / 5)
    assert float(losses["total"]) == pytest.approx(expected_bpr + 0.5 * 31 / 5)
    scores = model.score({"users": torch.tensor([1]), "input": torch.zeros(1, 2, dtype=torch.long)})
    assert scores.tolist() == [[0.0, 2.0, 0.0, 2.0, 0.0, 0.0]]


def test_defaults_follow_the_official_code_and_users_are_required():
    from elcrec.settings import model_defaults

    settings = model_defaults("bprmf")
    assert (settings["hidden_size"], settings["lr"], settings["l2"], settings["epochs"]) == (64, 0.01, 1e-5, 500)
    with pytest.raises(ElcrecError, match="number of users"):
        build("bprmf", VOCAB, settings)

"""models/caser.py: sliding windows on hand-made sequences, the BCE loss by hand, scoring."""

import math

import pytest
import torch
from model_helpers import VOCAB, settings_for

from elcrec.models.caser import sliding_windows
from elcrec.models.registry import build


def windows_as_lists(items, size):
    rows, starts = sliding_windows(items, size)
    return [(int(row), items[row, start : start + size].tolist()) for row, start in zip(rows, starts, strict=True)]


def test_windows_of_a_long_and_a_short_sequence():
    items = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3]])
    # row 0 holds 6 items: windows of 4 start at each of its items that leaves room (3 windows);
    # row 1 holds 3 items: one window of its last 4 columns, padded in front; row 2: 4 windows
    assert windows_as_lists(items, 4) == [
        (0, [1, 2, 3, 4]),
        (0, [2, 3, 4, 5]),
        (0, [3, 4, 5, 6]),
        (1, [0, 7, 8, 9]),
        (2, [9, 8, 7, 6]),
        (2, [8, 7, 6, 5]),
        (2, [7, 6, 5, 4]),
        (2, [6, 5, 4, 3]),
    ]
    assert windows_as_lists(torch.tensor([[0, 0, 1, 2]]), 4) == [(0, [0, 0, 1, 2])]


def test_training_windows_join_inputs_and_the_last_target():
    # inputs s_1..s_{n-3} and targets s_2..s_{n-2}: the windows run over s_1..s_{n-2}
    model = build("caser", 12, settings_for("caser", window=2, targets=1, dropout=0.0), n_users=2)
    batch = {
        "users": torch.tensor([0, 1]),
        "input": torch.tensor([[0, 1, 2, 3], [0, 0, 0, 5]]),
        "target": torch.tensor([[0, 2, 3, 4], [0, 0, 0, 6]]),
        "negative": torch.tensor([[0, 9, 10, 11], [0, 0, 0, 8]]),
    }
    seen = {}
    model.represent = lambda recent, users: seen.setdefault("recent", (recent, users)) and torch.zeros(len(users), 16)
    model.item_logits = lambda x, items: seen.setdefault(len(seen), items) * 0.0
    model.loss(batch)
    recent, users = seen["recent"]
    assert recent.tolist() == [[1, 2], [2, 3], [0, 5]] and users.tolist() == [0, 0, 1]
    assert seen[1].tolist() == [[3], [4], [6]]  # targets
    assert seen[2].tolist() == [[10], [11], [8]]  # each target's own sampled negative


def test_bce_loss_by_hand():
    model = build("caser", 4, settings_for("caser", hidden_size=2, window=2, targets=1, dropout=0.0), n_users=1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.fully_connected.bias.copy_(torch.tensor([1.0, -1.0]))  # z = relu(bias) = (1, 0)
        model.user_embedding.weight.copy_(torch.tensor([[0.0, 2.0]]))  # x = (1, 0, 0, 2)
        weights = [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 1]]
        model.output_weights.weight.copy_(torch.tensor(weights).float())
    batch = {
        "users": torch.tensor([0]),
        "input": torch.tensor([[0, 1, 2]]),
        "target": torch.tensor([[0, 2, 3]]),
        "negative": torch.tensor([[0, 1, 1]]),
    }
    losses = {name: float(value.detach()) for name, value in model.loss(batch).items()}
    # the interactions 1, 2, 3 make one window: [1, 2] -> 3, with negative 1
    # logits x . W2 + b2: item 3 -> 1 + 2 = 3, item 1 -> 1
    assert losses["positive"] == pytest.approx(math.log(1 + math.exp(-3)))
    assert losses["negative"] == pytest.approx(math.log(1 + math.exp(1)))
    scores = model.score({"users": torch.tensor([0]), "input": torch.tensor([[2]])})
    assert scores.tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_scores_use_the_last_items_and_the_user():
    torch.manual_seed(0)
    model = build("caser", VOCAB, settings_for("caser"), n_users=3).eval()
    inputs = torch.tensor([[1, 2, 3, 4, 5, 6, 7], [9, 9, 3, 4, 5, 6, 7]])
    scores = model.score({"users": torch.tensor([0, 0]), "input": inputs})
    assert torch.allclose(scores[0], scores[1])  # only the last L = 5 items count
    other_user = model.score({"users": torch.tensor([1]), "input": inputs[:1]})
    assert not torch.allclose(scores[0], other_user[0])

"""models/pop.py: scores = training popularity, the same for every user."""

import torch
from model_helpers import VOCAB, epoch_context, settings_for

from elcrec.models.registry import build


def test_scores_are_the_counts_in_all_training_interactions():
    model = build("pop", VOCAB, settings_for("pop"))
    context = epoch_context()
    model.on_epoch_start(context)
    every = torch.from_numpy(context.train_sequences.items)  # s_1..s_{n-2}, uncut
    cut = torch.cat([context.train_input, context.train_target[:, -1:]], dim=1)  # the last max_len + 1 only
    cut = cut[cut > 0]
    assert len(cut) < len(every)  # the fixture has users longer than the window
    scores = model.score({"input": context.train_input[:3], "users": torch.arange(3)})
    assert scores.shape == (3, VOCAB) and torch.equal(scores[0], scores[2])
    assert scores[0].tolist() == torch.bincount(every, minlength=VOCAB).float().tolist()
    assert scores[0, 0] == 0  # padding is never counted
    assert list(model.parameters()) == [] and model.loss({"input": context.train_input})["total"] == 0


def test_pop_runs_one_epoch_by_default():
    assert settings_for("pop")["epochs"] == 1

"""models/bprmf.py: the BPR loss on a hand-checked example over every training interaction (also
those before the batch's max_len window; `sampler: all-items`), negatives outside the whole sequence;
the official sampler (one training item and one negative outside the training items per user), the
official glorot-uniform tables with sparse gradients for TF1's RMSProp, the official defaults."""

import math

import numpy as np
import pytest
import torch
from model_helpers import VOCAB, context_for, settings_for, tiny_sequences

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.models.registry import build


def prepared(split, epoch=0, seed=1, **overrides):
    model = build("bprmf", split.vocab_size, settings_for("bprmf", **overrides), n_users=split.n_users)
    model.prepare(split.train_sequences)
    model.on_epoch_start(context_for(split, epoch, seed, batch_size=4))
    return model


def test_bpr_loss_by_hand_over_every_training_item():
    # user A: 1 2 3 4 | 5 6 (training items 1-4, four > max_len + 1 = 3: the batch window lacks item 1)
    # user B: 3 | 1 2. Items 1..6, mask id 7, so A's only possible negative is 7 and B's are 4..7
    split = SequenceData.from_sequences([np.array([1, 2, 3, 4, 5, 6]), np.array([3, 1, 2])]).split(max_len=2)
    assert split.vocab_size == 8 and split.train_input[0].tolist() == [2, 3]  # the window starts at item 2
    model = prepared(split, hidden_size=2, l2=0.5, sampler="all-items")
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        rows = [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1]]  # B's negatives 4..7 look alike
        model.item_embedding.weight.copy_(torch.tensor(rows, dtype=torch.float32))
    batch = {"users": torch.tensor([1, 0]), "input": split.train_input[[1, 0]], "target": split.train_target[[1, 0]]}
    pair_rows, positives, negatives = model.training_pairs(batch["users"])
    assert pair_rows.tolist() == [0, 1, 1, 1, 1] and positives.tolist() == [3, 1, 2, 3, 4]
    assert negatives[1:].tolist() == [7, 7, 7, 7] and int(negatives[0]) in {4, 5, 6, 7}
    losses = {name: value.detach() for name, value in model.loss(batch).items()}
    # margins u.p - u.n: B (0, 1): 3 vs [1, 1] -> 1 - 1; A (1, 0): 1, 2, 3, 4 vs 7 -> 1-1, 2-1, 0-1, 1-1
    margins = [0, 0, 1, -1, 0]
    expected_bpr = sum(math.log(1 + math.exp(-margin)) for margin in margins) / 5
    assert float(losses["bpr"]) == pytest.approx(expected_bpr)
    # l2 per triple |u|^2 + |i|^2 + |j|^2: 1+1+2, 1+1+2, 1+4+2, 1+1+2, 1+2+2 -> mean 24/5, times 0.5, halved
    # as the official tf.nn.l2_loss (sum of squares / 2; NGCF/BPRMF.py:79-80)
    assert float(losses["l2"]) == pytest.approx(0.5 * 24 / 5 / 2)
    assert float(losses["total"]) == pytest.approx(expected_bpr + 0.5 * 24 / 5 / 2)
    scores = model.score({"users": torch.tensor([1]), "input": torch.zeros(1, 2, dtype=torch.long)})
    assert scores.tolist() == [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]]


def test_negatives_avoid_the_whole_sequence_and_are_fixed_by_seed_and_epoch():
    data = tiny_sequences(users=30, seed=4)
    split = data.split(max_len=3)  # users of up to 12 items: most have more training items than the window
    assert (split.train_sequences.lengths > 4).sum() > 10
    users = torch.tensor([5, 0, 17, 3, 29])
    model = prepared(split, sampler="all-items")
    rows, positives, negatives = model.training_pairs(users)
    for row, user in enumerate(users.tolist()):
        assert positives[rows == row].tolist() == data.sequence(user)[:-2].tolist()  # all of s_1..s_{n-2}
        whole = set(data.sequence(user).tolist())  # the validation and test items included
        drawn = negatives[rows == row].tolist()
        assert drawn and not whole & set(drawn) and all(1 <= item < split.vocab_size for item in drawn)
    again = prepared(split, sampler="all-items").training_pairs(users)[2]
    assert torch.equal(negatives, again)
    assert not torch.equal(negatives, prepared(split, epoch=1, sampler="all-items").training_pairs(users)[2])
    assert not torch.equal(negatives, prepared(split, seed=2, sampler="all-items").training_pairs(users)[2])


def test_the_official_sampler_draws_one_training_item_and_one_negative_outside_the_training_items():
    # user A: 1 2 3 4 | 5 6, user B: 3 | 1 2; items 1..6, mask id 7. A's only items outside its training
    # items are its validation and test items 5 and 6 (the official code may draw them), never the mask row
    split = SequenceData.from_sequences([np.array([1, 2, 3, 4, 5, 6]), np.array([3, 1, 2])]).split(max_len=2)
    model = prepared(split)
    seen_positives, seen_negatives = {0: set(), 1: set()}, {0: set(), 1: set()}
    for _ in range(60):
        rows, positives, negatives = model.training_pairs(torch.tensor([0, 1]))
        assert rows.tolist() == [0, 1]
        for user in (0, 1):
            seen_positives[user].add(int(positives[user]))
            seen_negatives[user].add(int(negatives[user]))
    assert seen_positives == {0: {1, 2, 3, 4}, 1: {3}}  # every training item, the one before the window too
    assert seen_negatives[0] == {5, 6} and seen_negatives[1] == {1, 2, 4, 5, 6}
    first, again = (prepared(split).training_pairs(torch.tensor([0, 1])) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # fixed by seed and epoch


def test_official_tables_are_glorot_uniform_with_sparse_gradients_for_tf1_rmsprop():
    split = tiny_sequences(users=30).split(max_len=3)
    model = prepared(split, hidden_size=16)
    items = split.vocab_size - 2  # the official table has no padding or mask row
    for table, rows in ((model.user_embedding, 30), (model.item_embedding, items)):
        bound = math.sqrt(6 / (rows + 16))
        assert table.weight.abs().max() <= bound and table.weight.abs().max() > 0.9 * bound
        assert table.sparse
    model.loss({"users": torch.tensor([0, 3, 7])})["total"].backward()
    assert model.user_embedding.weight.grad.is_sparse
    assert set(model.user_embedding.weight.grad.coalesce().indices()[0].tolist()) == {0, 3, 7}
    adam = prepared(split, optimizer="adam", init="normal")
    assert not adam.user_embedding.sparse and float(adam.user_embedding.weight.detach().std()) == pytest.approx(
        0.02, rel=0.2
    )


def test_the_training_items_are_rebuilt_from_the_data_never_saved():
    split = tiny_sequences().split(max_len=3)
    model = prepared(split)
    assert "train_items" not in model.state_dict() and "train_offsets" not in model.state_dict()
    assert torch.equal(model.train_items, torch.from_numpy(split.train_sequences.items))


def test_training_needs_prepare_and_the_epoch_context():
    split = tiny_sequences().split(max_len=3)
    model = build("bprmf", split.vocab_size, settings_for("bprmf"), n_users=split.n_users)
    with pytest.raises(ElcrecError, match="prepare"):
        model.training_pairs(torch.tensor([0]))
    model.prepare(split.train_sequences)
    with pytest.raises(ElcrecError, match="item sets"):
        model.training_pairs(torch.tensor([0]))
    with pytest.raises(ElcrecError, match="3 users' training items for a model of 20 users"):
        model.prepare(tiny_sequences(users=3).split(max_len=3).train_sequences)


def test_defaults_follow_the_official_code_and_users_are_required():
    from elcrec.settings import model_defaults

    settings = model_defaults("bprmf")
    assert (settings["hidden_size"], settings["lr"], settings["l2"], settings["epochs"]) == (64, 0.01, 1e-5, 500)
    official_loop = ("rmsprop-tf1", "xavier", "official", "sampled-users", 1024)
    assert tuple(settings[key] for key in ("optimizer", "init", "sampler", "batch_unit", "batch_size")) == official_loop
    with pytest.raises(ElcrecError, match="number of users"):
        build("bprmf", VOCAB, settings)

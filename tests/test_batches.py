import numpy as np
import pytest
import torch

from elcrec.data.batches import (
    ItemSets,
    TrainingData,
    augment,
    crop,
    mask,
    prefixes_ending_at,
    reorder,
    sample_negatives,
    sslrec_draws,
    sslrec_views,
    training_batches,
)
from elcrec.data.sequences import SequenceData


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def right_aligned(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    batch = torch.tensor([[0] * (width - len(row)) + row for row in rows])
    return batch, torch.tensor([len(row) for row in rows])


def test_item_sets_membership():
    data = SequenceData.from_sequences([np.array([1, 2, 3]), np.array([3, 4, 5])])
    sets = ItemSets(data.split().full_history, data.vocab_size)
    found = sets.contains(torch.tensor([0, 0, 1, 1]), torch.tensor([3, 4, 4, 1]))
    assert found.tolist() == [True, False, True, False]


def test_negatives_avoid_the_whole_sequence_and_may_be_the_mask_id():
    data = SequenceData.from_sequences([np.array([1, 2, 3, 4, 5]), np.array([2, 4, 6, 7, 8])])
    split = data.split(max_len=4)
    sets = ItemSets(split.full_history, data.vocab_size)  # vocab 10: items 1..8, mask id 9
    inputs = split.train_input.repeat(200, 1)
    users = torch.tensor([0, 1]).repeat(200)
    negatives = sample_negatives(inputs, users, sets, generator())
    assert torch.all(negatives[inputs == 0] == 0)
    for user, allowed in ((0, {6, 7, 8, 9}), (1, {1, 3, 5, 9})):
        drawn = set(negatives[(users == user)[:, None] & (inputs > 0)].tolist())
        assert drawn == allowed  # never a sequence item, never padding, the mask id 9 included


def test_crop_takes_a_contiguous_window_with_the_reference_start_range():
    batch, lengths = right_aligned([list(range(1, 11))])  # m = 10: size 2, start in [0, 7]
    starts = set()
    for seed in range(300):
        view = crop(batch, lengths, 0.2, generator(seed))[0].tolist()
        assert view[:-2] == [0] * 8 and view[-1] == view[-2] + 1
        starts.add(view[-2] - 1)
    assert starts == set(range(8))  # the reference never starts at m - size = 8


def test_crop_keeps_one_item_of_a_short_sequence():
    batch, lengths = right_aligned([[7, 8]])  # floor(0.2 * 2) = 0: one item, start in [0, 1]
    view = crop(batch, lengths, 0.2, generator())
    assert view.shape == (1, 2) and view[0, 0] == 0 and view[0, 1] in (7, 8)


def test_mask_zeroes_floor_gamma_m_positions():
    batch, lengths = right_aligned([list(range(1, 11)), [5, 6, 7]])
    view = mask(batch, lengths, 0.7, generator())
    assert (view[0] == 0).sum() == 7 and (view[1] == 0).sum() == 7 + 2  # 7 padding + floor(2.1)
    kept = view[batch > 0]
    assert torch.all((kept == 0) | (kept == batch[batch > 0]))


def test_reorder_shuffles_one_window_only():
    batch, lengths = right_aligned([list(range(1, 21))])  # size 4
    changed_any = False
    for seed in range(50):
        view = reorder(batch, lengths, 0.2, generator(seed))[0]
        assert sorted(view.tolist()) == list(range(1, 21))
        moved = torch.nonzero(view != batch[0]).flatten()
        if len(moved):
            changed_any = True
            assert moved.max() - moved.min() < 4
    assert changed_any


def test_augment_random_uses_every_method_and_cuts_to_max_len():
    batch, lengths = right_aligned([list(range(1, 31))] * 300)
    views = augment(batch, lengths, max_len=25, generator=generator())
    assert views.shape == (300, 25)
    zeros = (views == 0).sum(dim=1)
    assert (zeros == 25 - 6).any()  # crop: 6 of 30 items kept
    assert ((zeros > 0) & (zeros < 25 - 6)).any()  # mask: 21 of 30 zeroed, last 25 columns kept
    assert (zeros == 0).any()  # reorder
    with pytest.raises(ValueError, match="augmentation"):
        augment(batch, lengths, 25, generator(), method="flip")


def test_training_batches_cover_every_user_once_with_views_and_clean_negatives():
    sequences = [np.arange(1, n + 1) + 3 * u for u, n in enumerate([3, 4, 8, 12, 5, 6, 7])]
    split = SequenceData.from_sequences(sequences).split(max_len=6)
    data = TrainingData.of(split)
    generator = torch.Generator().manual_seed(0)
    batches = list(training_batches(data, 3, generator, views=True))
    users = torch.cat([batch["users"] for batch in batches])
    assert sorted(users.tolist()) == list(range(7)) and [len(b["users"]) for b in batches] == [3, 3, 1]
    for batch in batches:
        assert torch.equal(batch["input"], split.train_input[batch["users"]])
        assert batch["views"].shape == (2 * len(batch["users"]), 6)
        negatives = batch["negative"]
        assert torch.equal(negatives > 0, batch["target"] > 0)
        for row, user in enumerate(batch["users"].tolist()):
            assert not set(negatives[row][negatives[row] > 0].tolist()) & set(sequences[user].tolist())
    plain = next(training_batches(data, 3, generator, views=False))
    assert "views" not in plain


def test_prefixes_ending_at_moves_each_prefix_to_the_last_column():
    rows = torch.tensor([[0, 0, 3, 4, 5], [6, 7, 8, 9, 1]])
    prefixes = prefixes_ending_at(rows, torch.tensor([3, 0]))
    assert prefixes.tolist() == [[0, 0, 0, 3, 4], [0, 0, 0, 0, 6]]


def test_prefix_batches_hold_every_input_position_once_as_its_own_example():
    sequences = [np.arange(1, n + 1) + 3 * u for u, n in enumerate([3, 4, 8, 12, 5, 6, 7])]
    split = SequenceData.from_sequences(sequences).split(max_len=6)
    data = TrainingData.of(split)
    batches = list(training_batches(data, 4, torch.Generator().manual_seed(0), views=True, unit="prefixes"))
    examples = int((split.train_input > 0).sum())
    assert [len(batch["users"]) for batch in batches] == [4] * (examples // 4) + (
        [examples % 4] if examples % 4 else []
    )
    seen = []
    for batch in batches:
        assert batch["views"].shape == (2 * len(batch["users"]), 6)
        for row, user in enumerate(batch["users"].tolist()):
            prefix = batch["input"][row][batch["input"][row] > 0].tolist()
            items = split.train_input[user][split.train_input[user] > 0].tolist()
            targets = split.train_target[user][split.train_input[user] > 0].tolist()
            assert prefix == items[: len(prefix)] and int(batch["target"][row, -1]) == targets[len(prefix) - 1]
            assert int(batch["negative"][row, -1]) not in sequences[user].tolist()
            for view in (batch["views"][row], batch["views"][len(batch["users"]) + row]):
                assert set(view[view > 0].tolist()) <= set(prefix)  # views of the example's own prefix
            seen.append((user, len(prefix)))
    assert len(seen) == len(set(seen)) == examples
    with pytest.raises(ValueError, match="batch_unit"):
        next(training_batches(data, 4, torch.Generator(), unit="items"))


def test_whole_prefix_batches_take_every_prefix_of_the_uncut_input_cut_after():
    """IOCRec's official loader: every prefix of the whole training input, then cut to max_len."""
    sequences = [np.arange(1, n + 1) + 3 * u for u, n in enumerate([3, 4, 12, 15, 5])]
    split = SequenceData.from_sequences(sequences).split(max_len=6)
    data = TrainingData.of(split)
    batches = list(training_batches(data, 5, torch.Generator().manual_seed(0), views=True, unit="whole-prefixes"))
    seen = []
    for batch in batches:
        assert batch["input"].shape[1] == 6 and batch["views"].shape == (2 * len(batch["users"]), 6)
        assert batch["whole"].shape[1] == int((batch["whole"] > 0).sum(1).max())  # as wide as its longest
        for row, user in enumerate(batch["users"].tolist()):
            uncut = batch["whole"][row][batch["whole"][row] > 0].tolist()
            training = sequences[user][:-2].tolist()  # s_1..s_{n-2}: inputs and their targets
            assert uncut == training[: len(uncut)] and len(uncut) < len(training)
            assert batch["input"][row][batch["input"][row] > 0].tolist() == uncut[-6:]
            assert int(batch["target"][row, -1]) == training[len(uncut)]
            seen.append((user, len(uncut)))
    expected = sum(len(sequence) - 3 for sequence in sequences)  # every position of every whole input
    assert len(seen) == len(set(seen)) == expected > int((split.train_input > 0).sum())
    wide = TrainingData.of(SequenceData.from_sequences(sequences).split(max_len=20))  # every input is shorter
    for batch in training_batches(wide, 5, torch.Generator().manual_seed(0), unit="whole-prefixes"):
        assert batch["input"].shape == batch["target"].shape == batch["negative"].shape == (len(batch["users"]), 20)


def test_seq_aug_batches_leave_out_the_prefix_one_short_of_the_whole_input():
    """SSLRec's `_seq_aug`: the prefixes of 1..m-2 items and the whole input of m, not the one of m - 1."""
    sequences = [np.arange(1, n + 1) + 3 * u for u, n in enumerate([4, 5, 12, 15])]
    data = TrainingData.of(SequenceData.from_sequences(sequences).split(max_len=6))
    seen = []
    views = {"method": "sslrec", "tau": 0.6, "gamma": 0.3, "beta": 0.6}
    for batch in training_batches(data, 7, generator(), views=True, augmentation=views, unit="seq-aug"):
        assert batch["views"].shape == (2 * len(batch["users"]), 6)
        sizes = (batch["whole"] > 0).sum(1).tolist()
        seen += list(zip(batch["users"].tolist(), sizes, strict=True))
    whole = [len(sequence) - 3 for sequence in sequences]  # m: s_1..s_{n-3}
    expected = {(user, size) for user, m in enumerate(whole) for size in [*range(1, m - 1), m]}
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_sslrec_draws_follow_its_distributions():
    rows = torch.tensor([[0] * (12 - n) + list(range(1, n + 1)) for n in [2, 5, 9, 12] * 500])
    lengths = (rows > 0).sum(1)
    draws = sslrec_draws(rows, generator(), tau=0.6, gamma=0.3, beta=0.6)
    assert (draws.ops[:, 0] != draws.ops[:, 1]).all() and len({tuple(pair) for pair in draws.ops.tolist()}) == 6
    kept = torch.floor(0.6 * lengths.double()).long()[:, None]
    assert (draws.starts >= 0).all() and (draws.starts <= lengths[:, None] - kept).all()
    assert (draws.starts == lengths[:, None] - kept).any() and (draws.starts == 0).any()  # both ends drawn
    assert torch.equal(draws.masked.sum(-1), torch.floor(0.3 * lengths.double()).long()[:, None].expand(-1, 2))
    assert not draws.masked[(rows == 0)[:, None, :].expand(-1, 2, -1)].any()  # items only
    slots = torch.arange(12)
    shuffled = torch.where(slots < kept[..., None], draws.order, -1)
    unshuffled = torch.where(slots < kept[..., None], slots, -1).expand(-1, 2, -1)
    assert torch.equal(shuffled.sort(-1).values, unshuffled.sort(-1).values)  # a permutation of 0..n-1
    assert not torch.equal(shuffled, unshuffled)
    views = sslrec_views(rows, 99, draws, 0.6, 0.6)
    assert views.shape == (len(rows) * 2, 12) and (views == 99).any()


def test_user_batches_may_carry_the_uncut_input_and_its_negatives():
    sequences = [np.arange(1, n + 1) + 3 * u for u, n in enumerate([3, 4, 12, 15, 5])]
    split = SequenceData.from_sequences(sequences).split(max_len=6)
    data = TrainingData.of(split)
    batches = list(training_batches(data, 2, torch.Generator().manual_seed(0), views=True, whole=True))
    for batch in batches:
        assert batch["whole"].shape == batch["whole_negative"].shape and batch["views"].shape[1] == 6
        assert batch["whole"].shape[1] == int((batch["whole"] > 0).sum(1).max())
        assert torch.equal(batch["negative"], batch["whole_negative"][:, -6:]) or batch["whole"].shape[1] < 6
        for row, user in enumerate(batch["users"].tolist()):
            uncut = batch["whole"][row][batch["whole"][row] > 0].tolist()
            assert uncut == sequences[user][:-3].tolist()  # s_1..s_{n-3}, whatever max_len
            drawn = batch["whole_negative"][row]
            assert torch.equal(drawn > 0, batch["whole"][row] > 0)
            assert not set(drawn[drawn > 0].tolist()) & set(sequences[user].tolist())
    plain = next(training_batches(data, 2, torch.Generator().manual_seed(0)))
    assert "whole" not in plain
    wide = TrainingData.of(SequenceData.from_sequences(sequences).split(max_len=20))  # every input is shorter
    for batch in training_batches(wide, 2, torch.Generator().manual_seed(0), whole=True):
        assert batch["negative"].shape == batch["input"].shape == (len(batch["users"]), 20)
        assert torch.equal(batch["negative"][:, -batch["whole"].shape[1] :], batch["whole_negative"])


def test_sampled_user_batches_draw_distinct_users_afresh_for_n_train_over_b_plus_one_steps():
    sequences = [np.arange(1, n + 1) + 3 * u for u, n in enumerate([3, 4, 8, 12, 5, 6, 7])]
    split = SequenceData.from_sequences(sequences).split(max_len=6)
    data = TrainingData.of(split)
    n_train = sum(len(sequence) - 2 for sequence in sequences)  # s_1..s_{n-2}: 31
    batches = list(training_batches(data, 4, generator(), unit="sampled-users"))
    assert len(batches) == n_train // 4 + 1 == 8
    for batch in batches:
        assert len(batch["users"]) == 4 and len(set(batch["users"].tolist())) == 4  # distinct within a step
        assert torch.equal(batch["input"], split.train_input[batch["users"]])
    drawn = torch.stack([batch["users"] for batch in batches])
    assert len({tuple(row.tolist()) for row in drawn}) > 1  # drawn afresh each step, not one permutation
    larger = list(training_batches(data, 10, generator(), unit="sampled-users"))  # more than the 7 users
    assert len(larger) == 4 and all(len(batch["users"]) == 10 for batch in larger)
    with pytest.raises(ValueError, match="no views"):
        next(training_batches(data, 4, generator(), views=True, unit="sampled-users"))


def test_random_user_batches_draw_with_replacement_and_negatives_outside_the_training_items_only():
    """The official SASRec's sampler (kang205 sampler.py): users // b steps of b users drawn with
    replacement; a negative under every target, from 1..items, outside s_1..s_{n-2} only."""
    sequences = [np.array([1, 2, 3, 4, 5, 6, 7, 8]), np.array([2, 1, 9, 10]), np.array([3, 4, 5, 6, 7, 8])]
    split = SequenceData.from_sequences(sequences).split(max_len=4)  # user 0's input is cut
    data = TrainingData.of(split)
    batches = list(training_batches(data, 2, generator(), unit="random-users"))
    assert len(batches) == 1 and len(batches[0]["users"]) == 2
    batches = list(training_batches(data, 1, generator(), unit="random-users"))
    assert len(batches) == 3
    drawn, steps = {0: set(), 1: set(), 2: set()}, []
    for seed in range(200):
        for batch in training_batches(data, 3, generator(seed), unit="random-users"):
            assert torch.equal(batch["input"], split.train_input[batch["users"]])
            assert torch.equal(batch["negative"] > 0, batch["target"] > 0)
            for user, row in zip(batch["users"].tolist(), batch["negative"].tolist(), strict=True):
                drawn[user] |= {item for item in row if item}
            steps.append(batch["users"])
    training = {0: set(range(1, 7)), 1: {2, 1}, 2: {3, 4, 5, 6}}  # the uncut training items
    for user, items in drawn.items():
        assert not items & training[user] and max(items) <= 10  # never the mask id (11)
    assert {9, 10} <= drawn[1] and {7, 8} <= drawn[0] | drawn[2]  # validation and test items may be drawn
    assert any(len(set(users.tolist())) < 3 for users in steps)  # with replacement
    with pytest.raises(ValueError, match="no views"):
        next(training_batches(data, 2, generator(), views=True, unit="random-users"))


def test_window_batches_are_every_position_with_a_full_window_before_it():
    """The official GRU4Rec's windows (slientGe make_datasets.py): over the whole training input (uncut
    by max_len), each target with at least `window` items before it, those items its input."""
    sequences = [np.arange(1, n + 1) + 20 * u for u, n in enumerate([5, 8, 12, 7])]
    split = SequenceData.from_sequences(sequences).split(max_len=3)  # narrower than a user's training items
    data = TrainingData.of(split)
    batches = list(training_batches(data, 4, generator(), unit="windows", window=3, negatives=5))
    made = sorted(
        (int(user), tuple(items.tolist()), int(target))
        for batch in batches
        for user, items, target in zip(batch["users"], batch["input"], batch["target"][:, 0], strict=True)
    )
    expected = sorted(
        (u, tuple(int(item) for item in sequence[i - 3 : i]), int(sequence[i]))
        for u, sequence in enumerate(sequences)
        for i in range(3, len(sequence) - 2)  # the training items s_1..s_{n-2}
    )
    assert made == expected and len(made) == 0 + 3 + 7 + 2
    assert [len(batch["users"]) for batch in batches] == [4, 4, 4]
    for batch in batches:
        negatives = batch["negatives"]
        assert negatives.shape == (len(batch["users"]), 5) and bool((negatives > 0).all())
        for user, row in zip(batch["users"], negatives, strict=True):
            assert not set(row.tolist()) & set(sequences[int(user)].tolist())  # outside the user's items
    with pytest.raises(ValueError, match="window of at least one item"):
        next(training_batches(data, 4, generator(), unit="windows"))
    with pytest.warns(UserWarning, match="no training item has 20 items before it"):
        assert list(training_batches(data, 4, generator(), unit="windows", window=20)) == []

import numpy as np
import pytest
import torch
from conftest import write_lines

from elcrec import ElcrecError
from elcrec.data.sequences import MIN_LENGTH, SequenceData


def hand_made() -> SequenceData:
    # user 1: 1..7 (n=7); user 2: 10 11 12 (n=3, the shortest allowed)
    return SequenceData.from_sequences([np.arange(1, 8), np.array([10, 11, 12])])


def test_split_follows_the_reference_protocol():
    split = hand_made().split(max_len=5)
    # train: input s1..s_{n-3}, targets s2..s_{n-2}; cut to the last 5, left-padded with 0
    assert split.train_input.tolist() == [[0, 1, 2, 3, 4], [0, 0, 0, 0, 0]]
    assert split.train_target.tolist() == [[0, 2, 3, 4, 5], [0, 0, 0, 0, 0]]
    assert split.valid_input.tolist() == [[1, 2, 3, 4, 5], [0, 0, 0, 0, 10]]
    assert split.valid_target.tolist() == [6, 11]
    assert split.test_input.tolist() == [[2, 3, 4, 5, 6], [0, 0, 0, 10, 11]]  # cut to the last 5
    assert split.test_target.tolist() == [7, 12]
    assert split.vocab_size == 14 and split.train_input.dtype == torch.int64
    assert split.train_whole.tolist() == [[1, 2, 3, 4], [0, 0, 0, 0]] and split.train_lengths.tolist() == [4, 0]


def test_histories_are_whole_inputs_not_cut_to_max_len():
    split = hand_made().split(max_len=2)
    history = split.test_history
    assert history.lengths.tolist() == [6, 2]
    assert history.items[history.rows == 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert split.valid_history.items[split.valid_history.rows == 1].tolist() == [10]
    assert split.full_history.lengths.tolist() == [7, 3]


def test_too_short_sequences_are_refused_with_the_user():
    data = SequenceData.from_sequences([np.array([1, 2, 3]), np.array([4, 5])], np.array([7, 8]))
    with pytest.raises(ElcrecError, match="user 8 has 2 items"):
        data.split()


def test_load_with_a_minimum_length_names_the_file_line_and_the_other_short_lines(tmp_path):
    lines = ["5 1 2 3", "6 4 5", "7 1 2 3 4", *(f"{user} 9 8" for user in range(8, 16))]
    path = write_lines(tmp_path / "s.txt", lines)
    with pytest.raises(ElcrecError) as error:
        SequenceData.load(path, min_length=MIN_LENGTH)
    assert str(error.value).startswith(f"{path}:2: user 6 has 2 item(s), but every user needs at least 3")
    assert str(error.value).endswith("; 8 more users are shorter (lines 4, 5, 6, 7, 8, ...)")
    assert SequenceData.load(path).n_users == 11  # the format alone allows one item


def test_load_save_round_trip_and_stats(tmp_path):
    path = write_lines(tmp_path / "s.txt", ["1 1 2 3", "2 2 3 5 5"])
    data = SequenceData.load(path)
    assert data.sequence(1).tolist() == [2, 3, 5, 5]
    stats = data.stats()
    assert (stats["users"], stats["items"], stats["interactions"], stats["max_item_id"]) == (2, 4, 7, 5)
    assert stats["avg_length"] == 3.5 and stats["sparsity"] == pytest.approx(1 - 7 / 8)
    data.save(tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == path.read_text()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["1 2 3", "2 x 4"], ":2: expected integers"),
        (["1 2 3", "2"], ":2: expected a user id and at least one item"),
        (["1 2 0"], ":1: expected a user id"),
        (["1 2 3", "1 4 5"], ":2: user 1 already appeared on line 1"),
    ],
)
def test_malformed_sequence_files(tmp_path, lines, expected):
    path = write_lines(tmp_path / "bad.txt", lines)
    with pytest.raises(ElcrecError, match=expected):
        SequenceData.load(path)


def test_training_part_holds_s1_to_sn_minus_2_uncut_and_never_a_held_out_item():
    data = SequenceData.from_sequences([np.arange(1, 61), np.array([7, 8, 9])])
    split = data.split(max_len=5)
    part = split.train_sequences
    assert part.sequence(0).tolist() == list(range(1, 59)) and part.sequence(1).tolist() == [7]
    assert part.user_ids.tolist() == data.user_ids.tolist()
    held_out = {int(split.valid_target[0]), int(split.test_target[0])}
    assert held_out == {59, 60} and not held_out & set(part.sequence(0).tolist())

import pandas as pd
import pytest

from elcrec import ElcrecError
from elcrec.data.preprocess import build_sequences

ALL = {"user_k": 1, "item_k": 1}


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "time"]).astype({"time": "int64"})


def as_lists(sequences):
    return [sequence.tolist() for sequence in sequences]


def test_time_order_with_stable_tie_break_and_id_remap():
    rows = [("bob", "x", 5), ("ann", "y", 2), ("bob", "z", 1), ("ann", "x", 2), ("bob", "y", 5)]
    sequences, steps, items = build_sequences(frame(rows), ALL)
    # users by first appearance (bob=1, ann=2); bob: z(1) then x, y (equal times: file order);
    # items numbered walking bob then ann: z=1, x=2, y=3
    assert as_lists(sequences) == [[1, 2, 3], [3, 2]]
    assert items == ["z", "x", "y"]
    assert steps["raw"] == {"users": 2, "items": 3, "interactions": 5}


def test_dedupe_keeps_first_occurrence_in_time_order():
    rows = [("u", "a", 3), ("u", "b", 1), ("u", "a", 0), ("u", "c", 2)]
    sequences, steps, _ = build_sequences(frame(rows), {**ALL, "dedupe": "first"})
    assert as_lists(sequences) == [[1, 2, 3]]  # a(0), b(1), c(2); the later a(3) is dropped
    assert steps["dedupe_first"]["interactions"] == 3
    kept, _, _ = build_sequences(frame(rows), ALL)
    assert len(kept[0]) == 4


def test_time_window_is_inclusive():
    rows = [("u", "a", 1546300799), ("u", "b", 1546300800), ("u", "c", 1577750400), ("u", "d", 1577750401)]
    window = {**ALL, "time_min": "2019-01-01 00:00:00", "time_max": "2019-12-31 00:00:00"}
    sequences, steps, _ = build_sequences(frame(rows), window)
    assert as_lists(sequences) == [[1, 2]] and steps["time_window"]["interactions"] == 2
    with pytest.raises(ElcrecError, match="preprocessing.time_min"):
        build_sequences(frame(rows), {**ALL, "time_min": "January"})


def test_kcore_applies_and_empty_result_is_an_error():
    rows = [("u", item, t) for t, item in enumerate("abcde")] + [("v", "a", 9)]
    sequences, steps, items = build_sequences(frame(rows), {"user_k": 5, "item_k": 1})
    assert as_lists(sequences) == [[1, 2, 3, 4, 5]] and steps["kcore_5_1"]["users"] == 1
    assert items == list("abcde")  # v's lone "a" went with v; the raw ids are those of the kept items
    with pytest.raises(ElcrecError, match="no interaction survives"):
        build_sequences(frame(rows), {"user_k": 5, "item_k": 5})

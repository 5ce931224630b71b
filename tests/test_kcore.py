from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from elcrec.data.kcore import kcore_mask


def reference_kcore(pairs: list[tuple[int, int]], user_k: int, item_k: int) -> list[bool]:
    """Remove one violating interaction at a time until none is left (slow, obviously right)."""
    alive = [True] * len(pairs)
    while True:
        users = Counter(u for (u, _), a in zip(pairs, alive, strict=True) if a)
        items = Counter(i for (_, i), a in zip(pairs, alive, strict=True) if a)
        for index, (user, item) in enumerate(pairs):
            if alive[index] and (users[user] < user_k or items[item] < item_k):
                alive[index] = False
                break
        else:
            return alive


interactions = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=120)


@settings(max_examples=200, deadline=None)
@given(pairs=interactions, user_k=st.integers(1, 5), item_k=st.integers(1, 5))
def test_kcore_is_the_maximal_fixed_point_and_idempotent(pairs, user_k, item_k):
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    keep = kcore_mask(users, items, user_k, item_k)

    if keep.any():  # fixed point: every survivor meets both thresholds
        assert np.bincount(users[keep]).max(initial=0) >= user_k
        assert all(count >= user_k for count in Counter(users[keep]).values())
        assert all(count >= item_k for count in Counter(items[keep]).values())
    assert kcore_mask(users[keep], items[keep], user_k, item_k).all()  # idempotent
    assert keep.tolist() == reference_kcore(pairs, user_k, item_k)  # maximal: same as one-by-one removal


def test_kcore_cascades():
    # item 9 has 1 interaction; dropping it leaves user 0 with 1, then item 1 with 1, then user 1
    # with 1; user 2's two interactions with item 2 survive
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([9, 1, 1, 2, 2, 2])
    assert kcore_mask(users, items, 2, 2).tolist() == [False, False, False, False, True, True]

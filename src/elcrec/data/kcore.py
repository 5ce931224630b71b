"""Iterative k-core filtering of an interaction list.

An interaction is dropped while its user has fewer than `user_k` interactions or its item
fewer than `item_k` (repeated user-item pairs count each time, as in the S3-Rec preprocessing
behind the benchmark files). Dropping only violators converges to the unique largest subset in
which every user and item meets its threshold, whatever the order of removal.
"""

from __future__ import annotations

import numpy as np


def kcore_mask(user_codes: np.ndarray, item_codes: np.ndarray, user_k: int, item_k: int) -> np.ndarray:
    """Boolean mask of the interactions that survive; codes are non-negative integers."""
    if user_codes.shape != item_codes.shape:
        raise ValueError("user and item codes must have the same length")
    if user_k < 1 or item_k < 1:
        raise ValueError(f"k-core thresholds must be at least 1, got users {user_k}, items {item_k}")
    user_codes = np.asarray(user_codes, dtype=np.int64)
    item_codes = np.asarray(item_codes, dtype=np.int64)
    keep = np.ones(user_codes.shape[0], dtype=bool)
    n_users = int(user_codes.max(initial=-1)) + 1
    n_items = int(item_codes.max(initial=-1)) + 1
    while True:
        user_count = np.bincount(user_codes[keep], minlength=n_users)
        item_count = np.bincount(item_codes[keep], minlength=n_items)
        violates = keep & ((user_count[user_codes] < user_k) | (item_count[item_codes] < item_k))
        if not violates.any():
            return keep
        keep &= ~violates

"""Raw interactions -> per-user, time-ordered item sequences with ids from 1.

Steps, each counted for the report: optional time window, time ordering (stable: equal times
keep file order), optional de-duplication of repeated user-item pairs (keep the first in time
order), iterative k-core, id remapping. Users are numbered in order of first appearance in the
raw input; items in order of first appearance walking the users' sequences in user order. (The
S3-Rec script behind the benchmark shuffled users before numbering, so our ids differ from the
published file's while the sequences are the same.)
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from elcrec import ElcrecError
from elcrec.data.kcore import kcore_mask


def _seconds(text: str, key: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ElcrecError(f"preprocessing.{key}: expected an ISO date-time, found {text!r}") from error
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _counts(frame: pd.DataFrame) -> dict:
    return {
        "users": int(frame["user"].nunique()),
        "items": int(frame["item"].nunique()),
        "interactions": len(frame),
    }


def build_sequences(interactions: pd.DataFrame, preprocessing: dict) -> tuple[list[np.ndarray], dict, list[str]]:
    """Return the sequences (user i+1 -> array of item ids), the per-step counts and the raw id of
    each item (item i+1 is `items[i]`): the mapping the attributes go through."""
    frame = interactions.reset_index(drop=True)
    steps = {"raw": _counts(frame)}
    time_min, time_max = preprocessing.get("time_min"), preprocessing.get("time_max")
    if time_min is not None or time_max is not None:
        lower = _seconds(time_min, "time_min") if time_min is not None else np.iinfo(np.int64).min
        upper = _seconds(time_max, "time_max") if time_max is not None else np.iinfo(np.int64).max
        frame = frame[(frame["time"] >= lower) & (frame["time"] <= upper)]
        steps["time_window"] = _counts(frame)

    user_codes, _ = pd.factorize(frame["user"], sort=False)
    order = np.lexsort((np.arange(len(frame)), frame["time"].to_numpy(), user_codes))
    frame = frame.iloc[order].assign(user_code=user_codes[order])

    if preprocessing.get("dedupe", "none") == "first":
        frame = frame[~frame.duplicated(subset=["user", "item"], keep="first")]
        steps["dedupe_first"] = _counts(frame)

    user_k, item_k = preprocessing.get("user_k", 5), preprocessing.get("item_k", 5)
    item_codes, _ = pd.factorize(frame["item"], sort=False)
    keep = kcore_mask(frame["user_code"].to_numpy(), item_codes, user_k, item_k)
    frame = frame[keep]
    steps[f"kcore_{user_k}_{item_k}"] = _counts(frame)
    if frame.empty:
        raise ElcrecError(
            f"no interaction survives preprocessing (k-core users {user_k}, items {item_k}); counts: {steps}"
        )

    codes, raw_items = pd.factorize(frame["item"], sort=False)
    boundaries = np.flatnonzero(np.diff(frame["user_code"].to_numpy())) + 1
    sequences = np.split((codes + 1).astype(np.int64), boundaries)
    return sequences, steps, [str(item) for item in raw_items]

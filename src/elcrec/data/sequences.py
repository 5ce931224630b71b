"""The sequence file, the hand-off between data and models, and its leave-one-out split.

Format: one line per user, `user_id item_id item_id ...`, items in time order, ids from 1
(the benchmark files of S3-Rec/ICLRec/ELCRec). The split follows the authors' code
(PROTOCOL.md "Split"): for a sequence s_1..s_n

- train:      input s_1..s_{n-3}, targets s_2..s_{n-2} (next item at every position)
- validation: input s_1..s_{n-2}, target s_{n-1}
- test:       input s_1..s_{n-1}, target s_n

Inputs are cut to the last `max_len` items and left-padded with 0. The history masked at
evaluation is the whole input (not cut to `max_len`), as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.fileio import file_digest, write_text_atomic

MIN_LENGTH = 3
"""Validation needs one input item: s_1..s_{n-2}. A user with exactly 3 items has an empty
training input (all padding), which the reference code also allows."""


@dataclass(frozen=True)
class SequenceData:
    """All users' sequences in one flat array: user u's items are items[offsets[u]:offsets[u+1]]."""

    user_ids: np.ndarray
    items: np.ndarray
    offsets: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def max_item_id(self) -> int:
        return int(self.items.max())

    @property
    def vocab_size(self) -> int:
        """Embedding rows: 0 = padding, 1..max_item_id = items, max_item_id + 1 = mask id."""
        return self.max_item_id + 2

    def sequence(self, index: int) -> np.ndarray:
        return self.items[self.offsets[index] : self.offsets[index + 1]]

    def history(self) -> History:
        """Each user's items as (row, item) pairs."""
        return _history(self.items, self.offsets[:-1], self.offsets[1:])

    @classmethod
    def from_sequences(cls, sequences: list[np.ndarray], user_ids: np.ndarray | None = None) -> SequenceData:
        lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        items = np.concatenate(sequences).astype(np.int64) if sequences else np.zeros(0, np.int64)
        if user_ids is None:
            user_ids = np.arange(1, len(sequences) + 1, dtype=np.int64)
        return cls(user_ids=np.asarray(user_ids, dtype=np.int64), items=items, offsets=offsets)

    @classmethod
    def load(cls, path: str | Path, min_length: int = 1) -> SequenceData:
        """Read and check a sequence file; every error names the file and line. `min_length`
        (MIN_LENGTH wherever the file is to be split) refuses shorter users here, where the
        line is known, rather than in `split`, where it is not."""
        path = Path(path)
        if not path.is_file():
            raise ElcrecError(f"{path}: sequence file not found")
        user_ids, sequences, seen, short = [], [], {}, []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    values = np.array(fields, dtype=np.int64)
                except ValueError as error:
                    raise ElcrecError(
                        f"{path}:{number}: expected integers 'user item item ...', found {line.strip()[:80]!r}"
                    ) from error
                if len(values) < 2 or values.min() < 1:
                    raise ElcrecError(
                        f"{path}:{number}: expected a user id and at least one item id, all >= 1; "
                        f"found {line.strip()[:80]!r}"
                    )
                if values[0] in seen:
                    raise ElcrecError(f"{path}:{number}: user {values[0]} already appeared on line {seen[values[0]]}")
                seen[values[0]] = number
                user_ids.append(values[0])
                sequences.append(values[1:])
                if len(values) - 1 < min_length:
                    short.append((number, int(values[0]), len(values) - 1))
        if not sequences:
            raise ElcrecError(f"{path}: no sequences found")
        if short:
            (first, user, length), rest = short[0], [number for number, _, _ in short[1:]]
            lines = ", ".join(map(str, rest[:5])) + (", ..." if len(rest) > 5 else "")
            more = f"; {len(rest)} more users are shorter (lines {lines})" if rest else ""
            raise ElcrecError(
                f"{path}:{first}: user {user} has {length} item(s), but every user needs at least {min_length} "
                f"(the leave-one-out split holds out the last two){more}"
            )
        return cls.from_sequences(sequences, np.array(user_ids))

    def save(self, path: str | Path) -> None:
        lines = (
            " ".join(map(str, [int(user), *self.sequence(index).tolist()])) for index, user in enumerate(self.user_ids)
        )
        write_text_atomic(path, "\n".join(lines) + "\n")

    def stats(self) -> dict:
        """The dataset table's columns (paper Tables 6 and 7)."""
        users, interactions = self.n_users, int(self.offsets[-1])
        items = int(np.unique(self.items).size)
        return {
            "users": users,
            "items": items,
            "interactions": interactions,
            "avg_length": interactions / users,
            "sparsity": 1.0 - interactions / (users * items),
            "max_item_id": self.max_item_id,
            "vocab_size": self.vocab_size,
            "min_length": int(self.lengths.min()),
            "max_length": int(self.lengths.max()),
        }

    def split(self, max_len: int = 50) -> Split:
        short = np.flatnonzero(self.lengths < MIN_LENGTH)
        if short.size:
            index = int(short[0])
            raise ElcrecError(
                f"user {self.user_ids[index]} has {self.lengths[index]} items; the leave-one-out split needs at "
                f"least {MIN_LENGTH} per user ({short.size} users are shorter; apply k-core filtering)"
            )
        starts, ends = self.offsets[:-1], self.offsets[1:]
        return Split(
            max_len=max_len,
            n_users=self.n_users,
            vocab_size=self.vocab_size,
            train_input=self._window(starts, ends - 3, max_len),
            train_target=self._window(starts + 1, ends - 2, max_len),
            train_whole=self._window(starts, ends - 3, max(int(self.lengths.max()) - 3, 1)),
            train_lengths=torch.from_numpy((self.lengths - 3).astype(np.int64)),
            valid_input=self._window(starts, ends - 2, max_len),
            valid_target=torch.from_numpy(self.items[ends - 2]),
            test_input=self._window(starts, ends - 1, max_len),
            test_target=torch.from_numpy(self.items[ends - 1]),
            valid_history=_history(self.items, starts, ends - 2),
            test_history=_history(self.items, starts, ends - 1),
            full_history=_history(self.items, starts, ends),
            train_sequences=self.training_part(),
        )

    def training_part(self) -> SequenceData:
        """Every user's training interactions s_1..s_{n-2} (the split's validation and test items dropped)."""
        starts, ends = self.offsets[:-1], self.offsets[1:]
        keep = np.maximum(ends - starts - 2, 0)
        offsets = np.concatenate([[0], np.cumsum(keep)])
        return SequenceData(user_ids=self.user_ids, items=self.items[_ranges(starts, starts + keep)], offsets=offsets)

    def _window(self, starts: np.ndarray, ends: np.ndarray, max_len: int) -> torch.Tensor:
        """items[start:end] per row, cut to the last max_len and left-padded with 0."""
        positions = ends[:, None] - max_len + np.arange(max_len)[None, :]
        inside = positions >= starts[:, None]
        window = np.where(inside, self.items[np.clip(positions, 0, None)], 0)
        return torch.from_numpy(window.astype(np.int64))


@dataclass(frozen=True)
class History:
    """Each user's item set as (row, item) pairs: for masking seen items and rejecting negatives."""

    rows: torch.Tensor
    items: torch.Tensor
    lengths: torch.Tensor


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The flat indices of every range [start, end), concatenated in order."""
    lengths = ends - starts
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)


def _history(items: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> History:
    lengths = ends - starts
    rows = np.repeat(np.arange(len(starts)), lengths)
    flat = _ranges(starts, ends)
    return History(
        rows=torch.from_numpy(rows.astype(np.int64)),
        items=torch.from_numpy(items[flat].astype(np.int64)),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
    )


@dataclass(frozen=True)
class Split:
    """Tensors of the three views, one row per user in file order."""

    max_len: int
    n_users: int
    vocab_size: int
    train_input: torch.Tensor
    train_target: torch.Tensor
    train_whole: torch.Tensor  # uncut training inputs, right-aligned: what augmentations act on
    train_lengths: torch.Tensor
    valid_input: torch.Tensor
    valid_target: torch.Tensor
    test_input: torch.Tensor
    test_target: torch.Tensor
    valid_history: History
    test_history: History
    full_history: History
    # every user's training interactions s_1..s_{n-2}, uncut, in time order: all a model may learn
    # from outside the batches (popularity counts, item graphs); never a validation or test item
    train_sequences: SequenceData


def dataset_stats(path: str | Path, sources: list[dict], steps: dict | None, spec: dict) -> dict:
    """Stats of a written sequence file plus where it came from, for the report."""
    data = SequenceData.load(path)
    return {
        "dataset": spec.get("name"),
        "route": spec.get("route"),
        "format": spec.get("format"),
        **data.stats(),
        "sequence_sha256": file_digest(path, "sha256"),
        "sources": sources,
        "preprocessing": spec.get("preprocessing", {}),
        "steps": steps or {},
    }

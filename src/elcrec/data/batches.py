"""Training-batch tensors: negatives and the contrastive views, vectorised over the batch.

Semantics follow the authors' code (PROTOCOL.md "Next-item loss", "Augmentations"), including
its quirks, so that the default run is the reference's:
- a negative is uniform over ids 1..vocab-1 (the mask id included, as `randint(1, item_size-1)`)
  and redrawn while it is anywhere in the user's whole sequence;
- crop keeps floor(tau*m) items (at least one) starting uniformly in [0, m - floor(tau*m) - 1];
- mask sets floor(gamma*m) distinct positions to 0;
- reorder shuffles a window of floor(beta*m) items starting uniformly in [0, m - floor(beta*m) - 1];
- `random` picks one of the three per view, uniformly.
Views are built from the whole (uncut) training input, right-aligned, then cut to the last
`max_len` columns. No Python loop runs per item or per row.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from elcrec.data.sequences import History, Split

AUGMENTATIONS = ("crop", "mask", "reorder")


class ItemSets:
    """Each user's item set, for vectorised membership tests (sorted row*vocab+item keys)."""

    def __init__(self, history: History, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.keys = torch.sort(history.rows * vocab_size + history.items).values

    def contains(self, rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        queries = rows * self.vocab_size + items
        positions = torch.searchsorted(self.keys, queries).clamp(max=len(self.keys) - 1)
        return self.keys[positions] == queries


def sample_negatives(
    inputs: torch.Tensor, users: torch.Tensor, item_sets: ItemSets, generator: torch.Generator
) -> torch.Tensor:
    """One negative per non-padding input position (0 at padding), not in the user's sequence."""
    rows = users[:, None].expand_as(inputs)
    negatives = torch.randint(1, item_sets.vocab_size, inputs.shape, generator=generator)
    redraw = item_sets.contains(rows, negatives) & (inputs > 0)
    while redraw.any():
        fresh = torch.randint(1, item_sets.vocab_size, (int(redraw.sum()),), generator=generator)
        negatives[redraw] = fresh
        redraw[redraw.clone()] = item_sets.contains(rows[redraw], fresh)
    return torch.where(inputs > 0, negatives, torch.zeros_like(negatives))


def _uniform_int(high_inclusive: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-row integer uniform in [0, high_inclusive]."""
    draws = torch.rand(high_inclusive.shape, generator=generator)
    return torch.minimum((draws * (high_inclusive + 1)).long(), high_inclusive)


def _take_window(batch: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Items [start, start+size) of each row's m items, right-aligned in a zero matrix."""
    width = batch.shape[1]
    columns = torch.arange(width)[None, :]
    offset = columns - (width - size[:, None])  # position inside the window, < 0 = padding
    source = (width - lengths[:, None]) + start[:, None] + offset
    taken = batch.gather(1, source.clamp(0, width - 1))
    return torch.where(offset >= 0, taken, torch.zeros_like(taken))


def crop(batch: torch.Tensor, lengths: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    size = torch.floor(tau * lengths.double()).long()
    start = _uniform_int((lengths - size - 1).clamp(min=0), generator)
    return _take_window(batch, lengths, start, size.clamp(min=1))


def mask(batch: torch.Tensor, lengths: torch.Tensor, gamma: float, generator: torch.Generator) -> torch.Tensor:
    width = batch.shape[1]
    count = torch.floor(gamma * lengths.double()).long()
    is_item = torch.arange(width)[None, :] >= (width - lengths[:, None])
    keys = torch.where(is_item, torch.rand(batch.shape, generator=generator), torch.full(batch.shape, 2.0))
    rank = keys.argsort(dim=1).argsort(dim=1)  # random order of each row's item positions
    return torch.where(rank < count[:, None], torch.zeros_like(batch), batch)


def reorder(batch: torch.Tensor, lengths: torch.Tensor, beta: float, generator: torch.Generator) -> torch.Tensor:
    width = batch.shape[1]
    size = torch.floor(beta * lengths.double()).long()
    start_column = (width - lengths) + _uniform_int((lengths - size - 1).clamp(min=0), generator)
    columns = torch.arange(width)[None, :].double()
    inside = (columns >= start_column[:, None]) & (columns < (start_column + size)[:, None])
    # window columns get random keys inside [start, start+size): sorting shuffles only them
    random_keys = start_column[:, None] + size[:, None] * torch.rand(batch.shape, generator=generator).double()
    order = torch.where(inside, random_keys, columns).argsort(dim=1)
    return batch.gather(1, order)


def augment(
    batch: torch.Tensor,
    lengths: torch.Tensor,
    max_len: int,
    generator: torch.Generator,
    method: str = "random",
    tau: float = 0.2,
    gamma: float = 0.7,
    beta: float = 0.2,
) -> torch.Tensor:
    """One view per row of a right-aligned batch of whole training inputs -> [rows, max_len]."""
    views = {
        "crop": lambda: crop(batch, lengths, tau, generator),
        "mask": lambda: mask(batch, lengths, gamma, generator),
        "reorder": lambda: reorder(batch, lengths, beta, generator),
    }
    if method == "random":
        choice = torch.randint(0, len(AUGMENTATIONS), (batch.shape[0],), generator=generator)
        result = torch.zeros_like(batch)
        for index, name in enumerate(AUGMENTATIONS):
            result = torch.where((choice == index)[:, None], views[name](), result)
    elif method in views:
        result = views[method]()
    else:
        raise ValueError(f"augmentation must be 'random' or one of {AUGMENTATIONS}, got {method!r}")
    if result.shape[1] >= max_len:
        return result[:, -max_len:]
    return torch.nn.functional.pad(result, (max_len - result.shape[1], 0))


def training_batches(
    split: Split,
    item_sets: ItemSets,
    batch_size: int,
    generator: torch.Generator,
    views: bool = False,
    augmentation: dict | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch: users in a random order, `batch_size` at a time (the last batch may be smaller).

    Keys: users, input, target, negative ([b, max_len]) and, with `views`, two augmented views of
    each training input stacked as [2b, max_len] (view one's rows first).
    """
    order = torch.randperm(split.n_users, generator=generator)
    for start in range(0, split.n_users, batch_size):
        users = order[start : start + batch_size]
        batch = {
            "users": users,
            "input": split.train_input[users],
            "target": split.train_target[users],
        }
        batch["negative"] = sample_negatives(batch["target"], users, item_sets, generator)
        if views:
            lengths = split.train_lengths[users]
            width = max(int(lengths.max()), 1)
            whole = split.train_whole[users][:, -width:]
            options = augmentation or {}
            pair = [augment(whole, lengths, split.max_len, generator, **options) for _ in range(2)]
            batch["views"] = torch.cat(pair)
        yield batch

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

Everything is built where the model is (`TrainingData.of(split, device)` moves the split's
training tensors there once per run; the generator lives on the same device): on a GPU a step
reads nothing back from it. The host reads the device per epoch, not per step: the epoch's user
order (each batch's view width is its longest sequence, known on the host) and, once per redraw
round, the rejection loop of the epoch's negatives, drawn for every user at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from elcrec.data.sequences import History, Split

AUGMENTATIONS = ("crop", "mask", "reorder")
# what a training batch's `batch_size` counts: users (each row a user's input), or prefix examples:
# each position of the input (cut to max_len) one row (DCRec's official loader), or each position of the
# whole training input one row, cut to max_len after (IOCRec's); see `prefix_batches`; or users drawn
# afresh for each step (the official BPR-MF's sampler): `sampled_user_batches`; or sliding windows
# of the whole training input (the official GRU4Rec's): `window_batches`; seq-aug: the whole-prefixes
# but the one a prefix short of the whole input (SSLRec's `_seq_aug`, off by one)
BATCH_UNITS = ("users", "prefixes", "whole-prefixes", "seq-aug", "sampled-users", "random-users", "windows")


class ItemSets:
    """Each user's item set, for vectorised membership tests (sorted row*vocab+item keys)."""

    def __init__(self, history: History, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.keys = torch.sort(history.rows * vocab_size + history.items).values

    @classmethod
    def of_keys(cls, keys: torch.Tensor, vocab_size: int) -> ItemSets:
        """From the sorted keys of another ItemSets (a model keeps them as a buffer)."""
        sets = object.__new__(cls)
        sets.vocab_size, sets.keys = vocab_size, keys
        return sets

    def to(self, device: torch.device | str) -> ItemSets:
        return ItemSets.of_keys(self.keys.to(device), self.vocab_size)

    def contains(self, rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        queries = rows * self.vocab_size + items
        positions = torch.searchsorted(self.keys, queries).clamp(max=len(self.keys) - 1)
        return self.keys[positions] == queries


def sample_negatives(
    inputs: torch.Tensor,
    users: torch.Tensor,
    item_sets: ItemSets,
    generator: torch.Generator | None,
    high: int | None = None,
) -> torch.Tensor:
    """One negative per non-padding input position (0 at padding), not in the user's item set:
    uniform over 1..high-1 (default high: the vocabulary size)."""
    rows = users[:, None].expand_as(inputs)
    device, high = inputs.device, high or item_sets.vocab_size
    negatives = torch.randint(1, high, inputs.shape, generator=generator, device=device)
    redraw = item_sets.contains(rows, negatives) & (inputs > 0)
    while redraw.any():
        fresh = torch.randint(1, high, (int(redraw.sum()),), generator=generator, device=device)
        negatives[redraw] = fresh
        redraw[redraw.clone()] = item_sets.contains(rows[redraw], fresh)
    return torch.where(inputs > 0, negatives, torch.zeros_like(negatives))


def _uniform_int(high_inclusive: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-row integer uniform in [0, high_inclusive]."""
    draws = torch.rand(high_inclusive.shape, generator=generator, device=high_inclusive.device)
    return torch.minimum((draws * (high_inclusive + 1)).long(), high_inclusive)


def _take_window(batch: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Items [start, start+size) of each row's m items, right-aligned in a zero matrix."""
    width = batch.shape[1]
    columns = torch.arange(width, device=batch.device)[None, :]
    offset = columns - (width - size[:, None])  # position inside the window, < 0 = padding
    source = (width - lengths[:, None]) + start[:, None] + offset
    taken = batch.gather(1, source.clamp(0, width - 1))
    return torch.where(offset >= 0, taken, torch.zeros_like(taken))


def crop(batch: torch.Tensor, lengths: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    size = torch.floor(tau * lengths.double()).long()
    start = _uniform_int((lengths - size - 1).clamp(min=0), generator)
    return _take_window(batch, lengths, start, size.clamp(min=1))


def _random_positions(lengths: torch.Tensor, count: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """`count` distinct positions among each row's last `lengths` columns (its items), uniformly:
    those whose random key (`draws`, uniform in [0, 1)) ranks below `count`, padding keyed last."""
    width = draws.shape[-1]
    is_item = torch.arange(width, device=draws.device) >= width - lengths[..., None]
    rank = torch.where(is_item, draws, 2.0).argsort(dim=-1).argsort(dim=-1)
    return rank < count[..., None]


def mask(batch: torch.Tensor, lengths: torch.Tensor, gamma: float, generator: torch.Generator) -> torch.Tensor:
    count = torch.floor(gamma * lengths.double()).long()
    draws = torch.rand(batch.shape, generator=generator, device=batch.device)
    return torch.where(_random_positions(lengths, count, draws), torch.zeros_like(batch), batch)


def reorder(batch: torch.Tensor, lengths: torch.Tensor, beta: float, generator: torch.Generator) -> torch.Tensor:
    width = batch.shape[1]
    size = torch.floor(beta * lengths.double()).long()
    start_column = (width - lengths) + _uniform_int((lengths - size - 1).clamp(min=0), generator)
    columns = torch.arange(width, device=batch.device)[None, :].double()
    inside = (columns >= start_column[:, None]) & (columns < (start_column + size)[:, None])
    # window columns get random keys inside [start, start+size): sorting shuffles only them
    draws = torch.rand(batch.shape, generator=generator, device=batch.device)
    random_keys = start_column[:, None] + size[:, None] * draws.double()
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
        choice = torch.randint(0, len(AUGMENTATIONS), (batch.shape[0],), generator=generator, device=batch.device)
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


@dataclass(frozen=True)
class SSLRecDraws:
    """Every random draw of HKUDS/SSLRec's `_cl4srec_aug` for a batch of rows [b, width], per row and
    view (the last-but-one axis, view one first): `ops` 0 crop, 1 mask, 2 reorder (two distinct a row);
    `starts` crop's or reorder's `randint(0, m - n)`, counted from the row's end; `masked` [b, 2, width]
    mask's positions; `order` [b, 2, width] reorder's shuffle (slot k takes offset order[k], k < n)."""

    ops: torch.Tensor
    starts: torch.Tensor
    masked: torch.Tensor
    order: torch.Tensor


def sslrec_counts(lengths: torch.Tensor, rate: float) -> torch.Tensor:
    """math.floor(length * rate), as cl4srec.py counts the items an augmentation takes."""
    return torch.floor(rate * lengths.double()).long()


def sslrec_draws(rows: torch.Tensor, generator: torch.Generator, tau: float, gamma: float, beta: float) -> SSLRecDraws:
    """Draws with SSLRec's distributions (random.sample(range(3), k=2), randint, sample, shuffle)."""
    size, width = rows.shape
    device = rows.device
    lengths = (rows > 0).sum(1)[:, None].expand(size, 2)
    first = torch.randint(0, 3, (size,), generator=generator, device=device)
    second = (first + 1 + torch.randint(0, 2, (size,), generator=generator, device=device)) % 3
    ops = torch.stack([first, second], dim=1)
    moved = sslrec_counts(lengths, beta)
    starts = _uniform_int(lengths - torch.where(ops == 0, sslrec_counts(lengths, tau), moved), generator)
    draws = torch.rand((size, 2, width), generator=generator, device=device)
    masked = _random_positions(lengths, sslrec_counts(lengths, gamma), draws)
    columns = torch.arange(width, device=device)
    keys = torch.where(columns < moved[..., None], draws, 2.0 + columns)  # the first `moved` slots shuffled
    return SSLRecDraws(ops, starts, masked, keys.argsort(dim=-1))


def sslrec_views(rows: torch.Tensor, mask_id: int, draws: SSLRecDraws, tau: float, beta: float) -> torch.Tensor:
    """SSLRec's two views of left-padded rows -> [2b, width] (docs/OFFICIAL.md "CL4SRec"): crop keeps
    n = floor(tau m) items ending `start` before the row's end; mask sets the drawn positions to
    `mask_id`; reorder writes the shuffle of the items at end offsets start..start+n-1 (offset 0 is
    the row's first column: a -0 index) into end offsets start+2..start+n+1, so items repeat and
    padding moves in. The second view is made from the first's result where that was a mask or a
    reorder (an in-place edit of the row). Rows of at most one item are both views. Named departure:
    where the reorder's target runs past the row's start (a row of `width` items, start m - n), SSLRec
    raises ValueError; ours leaves the row as it is."""
    width = rows.shape[1]
    lengths = (rows > 0).sum(1)
    columns = torch.arange(width, device=rows.device)[None, :]

    kept, moved = sslrec_counts(lengths, tau), sslrec_counts(lengths, beta)

    def view(source: torch.Tensor, index: int) -> torch.Tensor:
        start = draws.starts[:, index]
        cropped = _take_window(source, lengths, lengths - kept - start, kept)
        masked = torch.where(draws.masked[:, index], torch.full_like(source, mask_id), source)
        first = (width - (start + 1 + moved))[:, None]  # the column of the reorder's first slot
        slot = (columns - first).clamp(0, width - 1)
        offsets = start[:, None] + draws.order[:, index].gather(1, slot)
        inside = (columns >= first) & (columns < first + moved[:, None]) & (first >= 0)
        reordered = torch.where(inside, source.gather(1, (width - offsets) % width), source)
        op = draws.ops[:, index, None]
        return torch.where(op == 0, cropped, torch.where(op == 1, masked, reordered))

    one = view(rows, 0)
    two = view(torch.where(draws.ops[:, :1] == 0, rows, one), 1)
    short = (lengths <= 1)[:, None]
    return torch.cat([torch.where(short, rows, one), torch.where(short, rows, two)])


def view_pair(
    uncut: torch.Tensor,
    lengths: torch.Tensor,
    cut: torch.Tensor,
    data: TrainingData,
    generator: torch.Generator,
    augmentation: dict | None,
) -> torch.Tensor:
    """Two views of each row [2b, max_len]: `augment` twice on the uncut rows, or with method `sslrec`
    SSLRec's pair made from the cut rows (its `_cl4srec_aug` sees the padded max_len input)."""
    options = augmentation or {}
    if options.get("method") != "sslrec":
        return torch.cat([augment(uncut, lengths, data.max_len, generator, **options) for _ in range(2)])
    rates = {key: options[key] for key in ("tau", "gamma", "beta")}  # SSLRec's: 0.6, 0.3, 0.6 (variant sslrec)
    draws = sslrec_draws(cut, generator, **rates)
    return sslrec_views(cut, data.item_sets.vocab_size - 1, draws, rates["tau"], rates["beta"])


@dataclass(frozen=True)
class TrainingData:
    """A split's training tensors on the device the batches are built on, and the lengths also on
    the host (a batch's view width is read there, without a device read)."""

    input: torch.Tensor
    target: torch.Tensor
    whole: torch.Tensor
    lengths: torch.Tensor
    host_lengths: torch.Tensor
    item_sets: ItemSets
    max_len: int

    @classmethod
    def of(cls, split: Split, device: torch.device | str = "cpu") -> TrainingData:
        return cls(
            input=split.train_input.to(device),
            target=split.train_target.to(device),
            whole=split.train_whole.to(device),
            lengths=split.train_lengths.to(device),
            host_lengths=split.train_lengths.cpu(),
            item_sets=ItemSets(split.full_history, split.vocab_size).to(device),
            max_len=split.max_len,
        )

    @property
    def n_users(self) -> int:
        return len(self.input)

    @property
    def device(self) -> torch.device:
        return self.input.device


def prefixes_ending_at(values: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Each row of a left-padded [n, width] matrix up to its column `columns[i]`, moved right to end
    at the last column (left padding, as a whole input)."""
    width = values.shape[1]
    source = torch.arange(width, device=values.device)[None, :] - (width - 1 - columns)[:, None]
    taken = values.gather(1, source.clamp(min=0))
    return torch.where(source >= 0, taken, torch.zeros_like(taken))


def last_columns(rows: torch.Tensor, width: int) -> torch.Tensor:
    """The last `width` columns of left-padded rows, padded on the left where they are narrower."""
    return torch.nn.functional.pad(rows, (max(width - rows.shape[1], 0), 0))[:, -width:]


def next_items(whole: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The next item of every position of the uncut right-aligned inputs: the one after it, the last
    target at the end, 0 at padding."""
    shifted = torch.cat([whole[:, 1:], target[:, -1:]], dim=1)
    return torch.where(whole > 0, shifted, torch.zeros_like(shifted))


def prefix_batches(
    data: TrainingData,
    batch_size: int,
    generator: torch.Generator,
    views: bool = False,
    augmentation: dict | None = None,
    whole: bool = False,
    skip_second_last: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch of prefix examples, shuffled, `batch_size` at a time: every non-padding position of
    every user's input (cut to max_len) is one example, its prefix left-padded, whose last target is
    the next item. With `whole`, every position of the whole (uncut) training input instead, each
    prefix cut to its last max_len items after, and the uncut prefix under "whole" (right-aligned,
    as wide as the batch's longest): the views augment it, as IOCRec's official loader does.
    `skip_second_last` leaves out the prefix one item short of the whole input (SSLRec's `_seq_aug`:
    `range(1, len(seq) - 1)`, then the whole input).

    The keys of `training_batches`, a row per example (`users` holds each example's user, repeated
    where a user has several); the views augment the example's own prefix, not the user's input.
    """
    device, max_len = data.device, data.max_len
    source = data.whole if whole else data.input
    targets = next_items(source, data.target) if whole else data.target
    rows, columns = (source > 0).nonzero(as_tuple=True)
    if skip_second_last:  # a prefix of m - 1 of the m items ends at column width - 2
        keep = columns != source.shape[1] - 2
        rows, columns = rows[keep], columns[keep]
    order = torch.randperm(len(rows), generator=generator, device=device)
    negatives = sample_negatives(targets, torch.arange(data.n_users, device=device), data.item_sets, generator)
    if whole:  # each example's prefix length, read on the host once an epoch: a batch's "whole" width
        sizes = (columns - (source.shape[1] - data.lengths[rows]) + 1)[order].cpu()
    for start in range(0, len(rows), batch_size):
        picked = order[start : start + batch_size]
        users, ends = rows[picked], columns[picked]
        prefixes = prefixes_ending_at(source[users], ends)
        batch = {
            "users": users,
            "input": last_columns(prefixes, max_len),
            "target": last_columns(prefixes_ending_at(targets[users], ends), max_len),
            "negative": last_columns(prefixes_ending_at(negatives[users], ends), max_len),
        }
        lengths = (prefixes > 0).sum(1)
        if whole:
            batch["whole"] = prefixes[:, -int(sizes[start : start + batch_size].max()) :]
        if views:
            batch["views"] = view_pair(prefixes, lengths, batch["input"], data, generator, augmentation)
        yield batch


def sampled_user_batches(
    data: TrainingData, batch_size: int, generator: torch.Generator
) -> Iterator[dict[str, torch.Tensor]]:
    """The official BPR-MF's epoch (NGCF utility/load_data.py:144-149, BPRMF.py:165-168): n_train //
    batch_size + 1 steps (n_train: the training interactions s_1..s_{n-2}), each of `batch_size`
    distinct users drawn uniformly afresh (so a user may come in several steps of an epoch, or none;
    when batch_size exceeds the users, drawn with replacement). Keys as the users unit's, no views."""
    device = data.device
    n_train = int(data.host_lengths.sum()) + data.n_users
    negatives = sample_negatives(data.target, torch.arange(data.n_users, device=device), data.item_sets, generator)
    for _ in range(n_train // batch_size + 1):
        if batch_size <= data.n_users:
            users = torch.randperm(data.n_users, generator=generator, device=device)[:batch_size]
        else:
            users = torch.randint(data.n_users, (batch_size,), generator=generator, device=device)
        yield {"users": users, "input": data.input[users], "target": data.target[users], "negative": negatives[users]}


def random_user_batches(
    data: TrainingData, batch_size: int, generator: torch.Generator
) -> Iterator[dict[str, torch.Tensor]]:
    """The official SASRec's epoch (kang205 main.py:43, 61-63; sampler.py:12-33): users // batch_size
    steps (at least one), each of `batch_size` users drawn uniformly with replacement, every target
    with one negative drawn for the step, uniform over the items 1..vocab-2, outside the user's
    training items s_1..s_{n-2} (the validation and test items may be drawn). Keys as the users unit's."""
    device = data.device
    training = torch.cat([data.whole, data.target[:, -1:]], dim=1)  # s_1..s_{n-3}, then s_{n-2}
    rows, columns = (training > 0).nonzero(as_tuple=True)
    training_sets = ItemSets(History(rows, training[rows, columns], data.lengths), data.item_sets.vocab_size)
    for _ in range(max(data.n_users // batch_size, 1)):
        users = torch.randint(data.n_users, (batch_size,), generator=generator, device=device)
        target = data.target[users]
        negative = sample_negatives(target, users, training_sets, generator, high=data.item_sets.vocab_size - 1)
        yield {"users": users, "input": data.input[users], "target": target, "negative": negative}


def window_batches(
    data: TrainingData, batch_size: int, generator: torch.Generator, window: int, negatives: int
) -> Iterator[dict[str, torch.Tensor]]:
    """The official GRU4Rec's epoch (slientGe make_datasets.py:47-58, DataInput.py): every position of
    the whole training input with at least `window` items before it is one example, shuffled,
    `batch_size` a step: "input" its last `window` items, "target" [b, 1] its item, "negatives" [b, k]
    drawn for the step, each outside the user's item set (independently: two may be equal)."""
    device = data.device
    source, targets = data.whole, next_items(data.whole, data.target)
    rows, columns = (source > 0).nonzero(as_tuple=True)
    keep = columns - (source.shape[1] - data.lengths[rows]) + 1 >= window
    rows, columns = rows[keep], columns[keep]
    if len(rows) == 0:
        message = f"batch_unit windows: no training item has {window} items before it: nothing to train on"
        warnings.warn(message, stacklevel=3)
    order = torch.randperm(len(rows), generator=generator, device=device)
    for start in range(0, len(rows), batch_size):
        picked = order[start : start + batch_size]
        users, ends = rows[picked], columns[picked]
        slots = torch.ones(len(users), negatives, dtype=torch.long, device=device)
        yield {
            "users": users,
            "input": prefixes_ending_at(source[users], ends)[:, -window:],
            "target": targets[users, ends][:, None],
            "negatives": sample_negatives(slots, users, data.item_sets, generator),
        }


def training_batches(
    data: TrainingData,
    batch_size: int,
    generator: torch.Generator,
    views: bool = False,
    augmentation: dict | None = None,
    unit: str = "users",
    whole: bool = False,
    window: int = 0,
    negatives: int = 1,
) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch: users in a random order, `batch_size` at a time (the last batch may be smaller),
    built on `data.device` with `generator` (on the same device); `unit` prefixes, whole-prefixes or
    seq-aug gives `prefix_batches` instead, sampled-users `sampled_user_batches`, random-users
    `random_user_batches`, windows `window_batches`
    (`window` items, `negatives` a window).

    Keys: users, input, target, negative ([b, max_len]) and, with `views`, two augmented views of
    each training input stacked as [2b, max_len] (view one's rows first; `view_pair`); with `whole`, the uncut
    training input and the negatives of its positions ("whole", "whole_negative": right-aligned, as
    wide as the batch's longest; "negative" is their last max_len columns).
    """
    if unit not in BATCH_UNITS:
        raise ValueError(f"batch_unit must be one of {BATCH_UNITS}, got {unit!r}")
    if unit == "sampled-users":
        if views or whole:
            raise ValueError("batch_unit sampled-users builds no views and no uncut inputs")
        yield from sampled_user_batches(data, batch_size, generator)
        return
    if unit == "random-users":
        if views or whole:
            raise ValueError("batch_unit random-users builds no views and no uncut inputs")
        yield from random_user_batches(data, batch_size, generator)
        return
    if unit == "windows":
        if views or whole or window < 1:
            raise ValueError("batch_unit windows needs a window of at least one item and builds no views")
        yield from window_batches(data, batch_size, generator, window, negatives)
        return
    if unit != "users":
        whole_rows = unit != "prefixes"  # whole-prefixes and seq-aug
        skip = unit == "seq-aug"
        yield from prefix_batches(data, batch_size, generator, views, augmentation, whole_rows, skip_second_last=skip)
        return
    device = data.device
    order = torch.randperm(data.n_users, generator=generator, device=device)
    every_user = torch.arange(data.n_users, device=device)
    if whole:  # a negative under every position of the uncut input, the cut input's the last columns
        whole_negatives = sample_negatives(next_items(data.whole, data.target), every_user, data.item_sets, generator)
        negatives = last_columns(whole_negatives, data.max_len)
    else:
        negatives = sample_negatives(data.target, every_user, data.item_sets, generator)
    host_order = order.cpu() if views or whole else None
    for start in range(0, data.n_users, batch_size):
        users = order[start : start + batch_size]
        batch = {
            "users": users,
            "input": data.input[users],
            "target": data.target[users],
            "negative": negatives[users],
        }
        if views or whole:
            width = max(int(data.host_lengths[host_order[start : start + batch_size]].max()), 1)
        if whole:
            batch["whole"], batch["whole_negative"] = data.whole[users][:, -width:], whole_negatives[users][:, -width:]
        if views:
            uncut = data.whole[users][:, -width:]
            batch["views"] = view_pair(uncut, data.lengths[users], batch["input"], data, generator, augmentation)
        yield batch

"""A tiny batch and settings every model test can share."""

import torch

from elcrec.settings import model_defaults

TINY = {"hidden_size": 8, "heads": 2, "inner_size": 16, "layers": 1, "max_len": 5, "clusters": 3}
VOCAB = 12


def settings_for(model: str, **overrides) -> dict:
    defaults = model_defaults(model)
    return defaults | {key: value for key, value in TINY.items() if key in defaults} | overrides


def tiny_batch() -> dict:
    inputs = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 0, 5, 6], [7, 8, 9, 10, 1], [0, 0, 2, 4, 6]])
    return {
        "users": torch.arange(4),
        "input": inputs,
        "target": torch.where(inputs > 0, inputs % 10 + 1, 0),
        "negative": torch.where(inputs > 0, torch.full_like(inputs, 9), 0),
        "views": torch.cat([torch.where(inputs % 2 == 0, inputs, 0), inputs.flip(1) * (inputs.flip(1) > 3)]),
    }


def tiny_sequences(users: int = 20, seed: int = 1):
    """Users with 3 to 12 items (some longer than max_len + 3, so cut inputs lose items), no item twice in a row."""
    import numpy as np

    from elcrec.data.sequences import SequenceData

    generator = np.random.default_rng(seed)
    sequences = []
    for _ in range(users):
        length = int(generator.integers(3, 13))
        sequences.append(np.array([1 + (i * 3 + int(generator.integers(0, 4))) % (VOCAB - 2) for i in range(length)]))
    return SequenceData.from_sequences(sequences)


def context_for(split, epoch: int = 0, seed: int = 1, batch_size: int = 7):
    """The epoch context the training loop builds for `split`."""
    from elcrec.data.batches import ItemSets
    from elcrec.models.base import EpochContext

    return EpochContext(
        epoch=epoch,
        seed=seed,
        train_input=split.train_input,
        train_target=split.train_target,
        batch_size=batch_size,
        device=torch.device("cpu"),
        train_sequences=split.train_sequences,
        item_sets=ItemSets(split.full_history, split.vocab_size),
    )


def epoch_context(epoch: int = 0, seed: int = 1):
    return context_for(tiny_sequences(seed=seed).split(max_len=TINY["max_len"]), epoch, seed)

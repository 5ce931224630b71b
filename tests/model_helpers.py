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


def epoch_context(epoch: int = 0, seed: int = 1):
    from elcrec.models.base import EpochContext

    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, VOCAB - 1, (20, TINY["max_len"]), generator=generator)
    targets = torch.where(inputs > 0, torch.randint(1, VOCAB - 1, inputs.shape, generator=generator), 0)
    return EpochContext(
        epoch=epoch, seed=seed, train_input=inputs, train_target=targets, batch_size=7, device=torch.device("cpu")
    )

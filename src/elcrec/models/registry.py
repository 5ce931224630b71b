"""Models by name: `register` on the class, `build(name, vocab_size, settings, n_users)` to make one."""

from __future__ import annotations

import importlib
import pkgutil

from elcrec import ElcrecError
from elcrec.models.base import RecommenderModel

MODELS: dict[str, type[RecommenderModel]] = {}


def register(cls: type[RecommenderModel]) -> type[RecommenderModel]:
    if not cls.name or cls.name in MODELS:
        raise ValueError(f"model class {cls.__name__} needs a unique `name` (got {cls.name!r})")
    MODELS[cls.name] = cls
    return cls


# modules of elcrec.models that hold no model
NOT_MODELS = {"backbone", "base", "dcrec_graphs", "kang205", "kmeans", "losses", "reference", "registry", "sslrec"}


def registered() -> list[str]:
    """Every model module of the package imported once (each registers its class with `register`):
    a new model is a new file, with no list here to edit and no import of models at import time."""
    import elcrec.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in NOT_MODELS:
            importlib.import_module(f"{package.__name__}.{module.name}")
    return sorted(MODELS)


def model_class(name: str) -> type[RecommenderModel]:
    if name not in registered():
        raise ElcrecError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    return MODELS[name]


def build(name: str, vocab_size: int, settings: dict, n_users: int = 0) -> RecommenderModel:
    """`n_users` reaches only models with `needs_users` (user-id embeddings: BPR-MF, Caser)."""
    cls = model_class(name)
    if not cls.needs_users:
        return cls(vocab_size, settings)
    if n_users < 1:
        raise ElcrecError(f"model {name!r} embeds user ids and needs the number of users")
    return cls(vocab_size, settings, n_users)

"""Models by name: `register` on the class, `build(name, vocab_size, settings)` to make one."""

from __future__ import annotations

from elcrec import ElcrecError
from elcrec.models.base import RecommenderModel

MODELS: dict[str, type[RecommenderModel]] = {}


def register(cls: type[RecommenderModel]) -> type[RecommenderModel]:
    if not cls.name or cls.name in MODELS:
        raise ValueError(f"model class {cls.__name__} needs a unique `name` (got {cls.name!r})")
    MODELS[cls.name] = cls
    return cls


def registered() -> list[str]:
    from elcrec.models import cl4srec, elcrec, iclrec, sasrec  # noqa: F401  (registers the built-in models)

    return sorted(MODELS)


def model_class(name: str) -> type[RecommenderModel]:
    if name not in registered():
        raise ElcrecError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    return MODELS[name]


def build(name: str, vocab_size: int, settings: dict) -> RecommenderModel:
    return model_class(name)(vocab_size, settings)

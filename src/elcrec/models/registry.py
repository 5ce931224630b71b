"""Models by name: `register` on the class, `build(name, vocab_size, settings, n_users)` to make one."""

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
    from elcrec.models import bert4rec, bprmf, caser, cl4srec, elcrec, gru4rec, iclrec, iocrec, maerec, pop, sasrec  # noqa: F401

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

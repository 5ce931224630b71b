"""Resolve a run's settings once: package defaults < model defaults < config, in that order.

Config layers, each merged over the last (config/config.yaml, validated by config/schema.yaml):
`training` (every run) < `models.<model>.settings` < `models.<model>.datasets.<dataset>` <
`models.<model>.variants.<variant>`. A key no layer below defines is a typo and an error that
names the layer; the resolved dict is what the run records and what its checkpoint must match.
"""

from __future__ import annotations

import dataclasses

from elcrec import ElcrecError
from elcrec.models.backbone import BackboneSettings
from elcrec.models.registry import model_class
from elcrec.training import TRAINING_DEFAULTS


def package_defaults() -> dict:
    return dict(TRAINING_DEFAULTS) | dataclasses.asdict(BackboneSettings())


def model_defaults(model: str) -> dict:
    return package_defaults() | dict(model_class(model).defaults)


def resolve(config: dict, dataset: str, model: str, variant: str) -> dict:
    models = config.get("models", {})
    if model not in models:
        raise ElcrecError(f"model {model!r} is not configured under `models` (configured: {sorted(models)})")
    entry = models[model]
    variants = entry.get("variants") or {"default": {}}
    if variant not in variants:
        raise ElcrecError(f"models.{model}: no variant {variant!r} (variants: {sorted(variants)})")
    settings = model_defaults(model)
    layers = [
        ("training", config.get("training") or {}),
        (f"models.{model}.settings", entry.get("settings") or {}),
        (f"models.{model}.datasets.{dataset}", (entry.get("datasets") or {}).get(dataset) or {}),
        (f"models.{model}.variants.{variant}", variants[variant] or {}),
    ]
    for where, layer in layers:
        unknown = sorted(set(layer) - set(settings))
        if unknown:
            raise ElcrecError(f"{where}: unknown setting(s) {unknown} for model {model!r}; known: {sorted(settings)}")
        settings |= layer
    return settings


def variants_of(config: dict, model: str) -> list[str]:
    return list((config.get("models", {}).get(model) or {}).get("variants") or {"default": {}})

"""Resolve a run's settings once: package defaults < model defaults < config, in that order.

Config layers, each merged over the last (config/config.yaml, validated by config/schema.yaml):
`training` (every run) < `models.<model>.settings` < `models.<model>.datasets.<dataset>` <
`models.<model>.variants.<variant>`. A key no layer below defines is a typo and an error that
names the layer; so is a value of the wrong type, outside its range or not among its choices
(`check`: the type is the default's, the choices the model's `choices` and TRAINING_CHOICES).
The resolved dict is what the run records and what its checkpoint must match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re

from elcrec import ElcrecError
from elcrec.models.backbone import BackboneSettings
from elcrec.models.registry import model_class
from elcrec.training import TRAINING_CHOICES, TRAINING_DEFAULTS

DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
POSITIVE = frozenset(
    {
        "lr", "pretrain_lr", "epochs", "pretrain_epochs", "batch_size", "eval_batch_size", "pretrain_batch_size",
        "hidden_size", "heads", "layers", "inner_size", "max_len", "clusters", "threads", "ce_negatives",
        "temperature", "cl_temp", "kmeans_iterations", "kmeans_redo", "intents", "negatives", "gcn_layers",
        "graph_distance", "mask_candidates", "mask_depth", "mask_steps", "reconstruction_edges",
        "reconstruction_negatives", "max_predictions", "horizontal_filters", "vertical_filters", "window",
        "targets", "sim_group", "neighbour_sample", "lr_decay",
    }
)  # fmt: skip
NON_NEGATIVE = frozenset(
    {
        "patience",
        "weight_decay",
        "l2",
        "reg",
        "alpha",
        "init_std",
        "graphcl_coefficient",
        "reward_eps",
        "pretrain_seed",
        "lr_decay_every",
        "clip_norm",
    }
)  # and every *_weight
FRACTIONS = frozenset({"dropout", "attention_dropout", "graph_dropout", "mask_p", "mask_prob"})  # in [0, 1)
SHARES = frozenset({"tau", "gamma", "beta", "confidence", "path_prob"})  # in [0, 1]


def package_defaults() -> dict:
    return dict(TRAINING_DEFAULTS) | dataclasses.asdict(BackboneSettings())


def model_defaults(model: str) -> dict:
    return package_defaults() | dict(model_class(model).defaults)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def problem(key: str, value, default, choices: dict) -> str | None:
    """What is wrong with `value` for setting `key` (whose default is `default`), or None."""
    if key == "device":
        return None if isinstance(value, str) and DEVICE.match(value) else f"{value!r} is not auto, cpu, cuda or cuda:N"
    if key in choices:
        allowed = list(choices[key])
        return None if value in allowed else f"{value!r} is not one of {allowed}"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"{value!r} is not true or false"
    if isinstance(default, int) or (default is None and key == "threads"):
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{value!r} is not a whole number"
    elif isinstance(default, float):
        if not _is_number(value):
            hint = ""
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    float(value)
                    hint = " (YAML reads 1e-3 as text: write 1.0e-3 or 0.001)"
            return f"{value!r} is not a number{hint}"
    elif isinstance(default, list):
        if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) and 0 <= v < 1 for v in value)):
            return f"{value!r} is not a list of two numbers in [0, 1)"
        return None
    elif isinstance(default, str):
        return None if isinstance(value, str) and value else f"{value!r} is not a name"
    if key in POSITIVE and not value > 0:
        return f"{value!r} must be greater than 0"
    if (key in NON_NEGATIVE or key.endswith("_weight")) and not value >= 0:
        return f"{value!r} must be 0 or more"
    if key in FRACTIONS and not 0 <= value < 1:
        return f"{value!r} must be in [0, 1)"
    if key in SHARES and not 0 <= value <= 1:
        return f"{value!r} must be in [0, 1]"
    return None


def check(layer: dict, where: str, model: str) -> None:
    """Every setting of `layer` (a config layer or hand-made settings) against model `model`'s
    defaults and choices; the first problem is an error naming `where` and the key."""
    defaults, choices = model_defaults(model), TRAINING_CHOICES | model_class(model).choices
    for key, value in layer.items():
        found = problem(key, value, defaults.get(key), choices) if key in defaults else None
        if found:
            raise ElcrecError(f"{where}.{key}: {found}")


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
        check(layer, f"config {where}", model)
        settings |= layer
    return settings


def variants_of(config: dict, model: str) -> list[str]:
    return list((config.get("models", {}).get(model) or {}).get("variants") or {"default": {}})

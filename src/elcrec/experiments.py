"""The experiment grid: config `experiments` names the paper's experiments, each a grid of
datasets x runs ([model, variant] pairs) x seeds, optionally x a sweep of one setting at a time.

`expand(config)` turns the grid into run keys (dataset, model, variant, seed). A run that several
experiments need (ELCRec seed 1 on Beauty is in Table 1, the ablation and the sensitivity sweep)
is one key, hence one run directory trained once. Sweep points get generated variants named
`<label>-<value>` (`alpha-0.1`, `k-64`) whose settings follow from the name alone: the base
variant's settings with the swept setting set to the value; a point equal to the base variant's
own setting on a dataset is the base run itself. Models the registry does not have yet come back
as pending keys, for the report to list, never silently dropped.

A model with a pre-training stage (S3-Rec, DSSRec) adds a pre-training per (dataset, model,
`pretraining` setting): every run that names it starts from it, so the runs sharing one must
agree on each setting it reads (an error names the runs otherwise); it is timed alone when any
of its runs is.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from elcrec import PRETRAIN_DIR, RUN_DIR, ElcrecError
from elcrec.models.registry import MODELS, registered
from elcrec.settings import resolve

SWEEP_VARIANT = re.compile(r"^(?P<label>[A-Za-z]+)-(?P<value>[0-9.e+-]+)$")


@dataclass(frozen=True, order=True)
class RunKey:
    dataset: str
    model: str
    variant: str
    seed: int

    @property
    def run_dir(self) -> str:
        return RUN_DIR.format(dataset=self.dataset, model=self.model, variant=self.variant, seed=self.seed)


@dataclass(frozen=True, order=True)
class PretrainKey:
    dataset: str
    model: str
    pretraining: str

    @property
    def directory(self) -> str:
        return PRETRAIN_DIR.format(dataset=self.dataset, model=self.model, pretraining=self.pretraining)


@dataclass(frozen=True)
class Grid:
    config: dict  # the config with every sweep variant written into models.<model>.variants
    runs: dict[RunKey, dict]  # every run to train, once, with its resolved settings
    experiments: dict[str, list[RunKey]]  # each experiment's runs (shared keys appear in several)
    pending: dict[str, list[RunKey]]  # runs of models the registry does not have yet
    exclusive: frozenset[RunKey]  # runs to train alone on the machine (timings: the cost experiment)
    # pre-trainings (models with a pre-training stage): each with the settings of its first run,
    # which run starts from which, and those timed alone (used by an exclusive run)
    pretrainings: dict[PretrainKey, dict] = field(default_factory=dict)
    pretraining_of: dict[RunKey, PretrainKey] = field(default_factory=dict)
    exclusive_pretrainings: frozenset[PretrainKey] = frozenset()


def sweep_value(value: float | int) -> str:
    """The value as it appears in a variant name: 0.01 -> '0.01', 10.0 -> '10', 64 -> '64'."""
    return f"{value:g}"


def sweep_variants(experiment: dict) -> dict[str, tuple[str, float | int]]:
    """{variant name: (setting, value)} for an experiment's sweep."""
    variants = {}
    for label, axis in (experiment.get("sweep") or {}).items():
        for value in axis["values"]:
            variants[f"{label}-{sweep_value(value)}"] = (axis["setting"], value)
    return variants


def _define_sweep_variant(config: dict, experiment: dict, variant: str, setting: str, value: float | int) -> None:
    """Write the sweep point into config models.<model>.variants: the base variant's overrides
    with `setting` set to `value`."""
    model, base = experiment["base"]
    variants = config.setdefault("models", {}).setdefault(model, {}).setdefault("variants", {})
    variants[variant] = dict(variants.get(base) or {}) | {setting: value}


def _seeds(config: dict, experiment: dict) -> list[int]:
    return list(experiment.get("seeds") or config.get("seeds") or [1])


def select(config: dict) -> dict:
    """The config cut to `experiments_only`: those experiments and the datasets they use.

    Snakemake merges a `--configfile` over config/config.yaml key by key, so a user's config can
    add an experiment and a dataset but never remove the paper's; this names what to run instead.
    Without `experiments_only` the config is returned as it is.
    """
    chosen = config.get("experiments_only")
    if not chosen:
        return config
    experiments = config.get("experiments") or {}
    unknown = [name for name in chosen if name not in experiments]
    if unknown:
        known = sorted(experiments)
        raise ElcrecError(f"experiments_only: {unknown} are not experiments of the config (known: {known})")
    selected = copy.deepcopy(config)
    selected["experiments"] = {name: experiments[name] for name in chosen}
    used = {dataset for name in chosen for dataset in experiments[name]["datasets"]}
    missing = sorted(used - set(config.get("datasets") or {}))
    if missing:
        raise ElcrecError(f"experiments_only: the chosen experiments use {missing}, which `datasets` does not list")
    selected["datasets"] = {name: entry for name, entry in config["datasets"].items() if name in used}
    return selected


def expand(config: dict) -> Grid:
    """Every experiment's runs; errors name the experiment and the offending entry."""
    registered()  # the built-in models register themselves
    config = copy.deepcopy(config)
    datasets = set(config.get("datasets") or {})
    experiments = config.get("experiments") or {}
    if not experiments:
        raise ElcrecError("config `experiments` is empty: nothing to train")
    runs: dict[RunKey, dict] = {}
    by_experiment: dict[str, list[RunKey]] = {}
    pending: dict[str, list[RunKey]] = {}
    exclusive: set[RunKey] = set()

    def settings_of(where: str, dataset: str, model: str, variant: str) -> dict:
        try:
            return resolve(config, dataset, model, variant)
        except ElcrecError as error:
            raise ElcrecError(f"experiments.{where}: {error}") from None

    for name, experiment in experiments.items():
        unknown = sorted(set(experiment["datasets"]) - datasets)
        if unknown:
            raise ElcrecError(f"experiments.{name}.datasets: {unknown} are not among the configured datasets")
        pairs = [tuple(pair) for pair in experiment.get("runs") or []]
        sweep = sweep_variants(experiment)
        if sweep:
            if "base" not in experiment:
                raise ElcrecError(f"experiments.{name}: a sweep needs `base: [model, variant]`")
            for variant, (setting, value) in sweep.items():
                _define_sweep_variant(config, experiment, variant, setting, value)
            pairs += [(experiment["base"][0], variant) for variant in sweep]
        keys, missing = [], []
        for model, variant in pairs:
            for dataset in experiment["datasets"]:
                if model not in MODELS:
                    missing += [RunKey(dataset, model, variant, seed) for seed in _seeds(config, experiment)]
                    continue
                settings = settings_of(name, dataset, model, variant)
                run_variant = variant
                if variant in sweep:  # the point at the base variant's own value is the base run
                    base_variant = experiment["base"][1]
                    if settings == settings_of(name, dataset, model, base_variant):
                        run_variant = base_variant
                for seed in _seeds(config, experiment):
                    key = RunKey(dataset, model, run_variant, seed)
                    runs[key] = settings
                    keys.append(key)
        by_experiment[name] = list(dict.fromkeys(keys))
        pending[name] = missing
        if experiment.get("exclusive"):
            exclusive.update(keys)
    pretrainings, pretraining_of = _pretrainings(runs)
    exclusive_pretrainings = frozenset(pretraining_of[key] for key in exclusive if key in pretraining_of)
    return Grid(
        config, runs, by_experiment, pending, frozenset(exclusive), pretrainings, pretraining_of, exclusive_pretrainings
    )


def _pretrainings(runs: dict[RunKey, dict]) -> tuple[dict[PretrainKey, dict], dict[RunKey, PretrainKey]]:
    """Each run of a pre-training model -> its pre-training; runs naming one must agree on what it reads."""
    pretrainings: dict[PretrainKey, dict] = {}
    first_run: dict[PretrainKey, RunKey] = {}
    pretraining_of: dict[RunKey, PretrainKey] = {}
    for key in sorted(runs):
        cls = MODELS[key.model]
        if not cls.pretrains:
            continue
        settings = runs[key]
        pretrain_key = PretrainKey(key.dataset, key.model, str(settings["pretraining"]))
        pretraining_of[key] = pretrain_key
        if pretrain_key not in pretrainings:
            pretrainings[pretrain_key], first_run[pretrain_key] = settings, key
            continue
        mine, theirs = cls.pretraining_identity(settings), cls.pretraining_identity(pretrainings[pretrain_key])
        differing = sorted(name for name in mine if mine[name] != theirs[name])
        if differing:
            other = first_run[pretrain_key]
            raise ElcrecError(
                f"models.{key.model}: variants {other.variant!r} and {key.variant!r} on {key.dataset} name the same "
                f"pre-training {pretrain_key.pretraining!r} but differ in {differing}, which it reads: give one "
                "of them its own `pretraining` name"
            )
    return pretrainings, pretraining_of


def summary(grid: Grid) -> str:
    """One line per experiment: its runs, how many it shares with others, and pending ones."""
    lines = []
    for name, keys in grid.experiments.items():
        shared = sum(1 for key in keys if any(key in other for n, other in grid.experiments.items() if n != name))
        pending = grid.pending[name]
        models = sorted({key.model for key in pending})
        note = f", {len(pending)} pending (not implemented: {', '.join(models)})" if pending else ""
        lines.append(f"experiment {name}: {len(keys)} runs ({shared} shared with other experiments){note}")
    lines.append(f"{len(grid.runs)} distinct runs in all, {len(grid.pretrainings)} pre-trainings")
    return "\n".join(lines)


def settings_of_run_dir(config: dict, run_dir: str) -> dict:
    """The settings of the run at `.../{dataset}/{model}/{variant}/seed{seed}`, from its name alone:
    a configured variant, or a sweep point `<label>-<value>` of an experiment's sweep."""
    parts = str(run_dir).rstrip("/").split("/")
    if len(parts) < 4 or not re.fullmatch(r"seed\d+", parts[-1]):
        raise ElcrecError(f"{run_dir}: not a run directory (.../dataset/model/variant/seedN)")
    dataset, model, variant = parts[-4:-1]
    config = copy.deepcopy(config)
    match = SWEEP_VARIANT.match(variant)
    for experiment in (config.get("experiments") or {}).values():
        axis = (experiment.get("sweep") or {}).get(match.group("label")) if match else None
        if axis and experiment.get("base", [None])[0] == model:
            value = float(match.group("value"))
            value = int(value) if value.is_integer() and isinstance(axis["values"][0], int) else value
            _define_sweep_variant(config, experiment, variant, axis["setting"], value)
            break
    return resolve(config, dataset, model, variant)

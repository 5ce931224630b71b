"""experiments.py: the grid of config.yaml (counts, shared runs, pending models, overrides) and
run directories whose names alone give their settings."""

import copy
import re

import pytest
import yaml
from conftest import REPO

from elcrec import ElcrecError
from elcrec.experiments import (
    SWEEP_VARIANT,
    PretrainKey,
    RunKey,
    expand,
    select,
    settings_of_run_dir,
    summary,
    sweep_value,
)


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def grid(config):
    return expand(config)


def test_counts_per_experiment(grid):
    counts = {name: len(keys) for name, keys in grid.experiments.items()}
    assert counts == {
        "table1": 168,
        "ablation": 48,
        "sensitivity": 36,
        "cost": 12,
        "departures": 204,
        "domains": 12,
        "official-weights": 3,
        "strong-baselines": 36,
    }
    assert len(grid.runs) == 168 + 48 - 12 + 36 - 4 + 12 + 204 + 12 + 3 + 36
    assert all(not keys for keys in grid.pending.values())  # every Table 1 column has its model
    assert "experiment table1: 168 runs (12 shared with other experiments)\n" in summary(grid) + "\n"
    assert "503 distinct runs in all, 21 pre-trainings" in summary(grid)


def test_pretrainings_are_shared_by_the_runs_that_name_them(grid):
    # S3-Rec: ISP, default (shared with the timed `cost` run) and train-negatives per dataset, and the
    # imported official one on Beauty; DSSRec's default (30 epochs) and e300 per dataset
    names = {(key.model, key.pretraining) for key in grid.pretrainings}
    assert names == {
        ("s3rec", "ISP"),
        ("s3rec", "default"),
        ("s3rec", "train-negatives"),
        ("s3rec", "official"),
        ("dssrec", "default"),
        ("dssrec", "e300"),
    }
    assert len(grid.pretrainings) == 4 * 5 + 1
    assert grid.pretrainings[PretrainKey("beauty", "dssrec", "default")]["pretrain_epochs"] == 30
    assert grid.pretrainings[PretrainKey("beauty", "dssrec", "e300")]["pretrain_epochs"] == 300
    default = PretrainKey("beauty", "s3rec", "default")
    users = sorted(key for key, pretraining in grid.pretraining_of.items() if pretraining == default)
    assert users == [RunKey("beauty", "s3rec", "cost", 1)] + [
        RunKey("beauty", "s3rec", "default", s) for s in (1, 2, 3)
    ]
    assert default.directory == "results/pretrain/beauty/s3rec/default"
    assert grid.exclusive_pretrainings == {
        PretrainKey(d, "s3rec", "default") for d in ("beauty", "sports", "toys", "yelp")
    }
    assert grid.pretrainings[PretrainKey("yelp", "s3rec", "ISP")]["pretrain_epochs"] == 100
    assert grid.pretrainings[PretrainKey("toys", "s3rec", "ISP")]["pretrain_epochs"] == 150
    assert RunKey("beauty", "sasrec", "default", 1) not in grid.pretraining_of


def test_runs_naming_one_pretraining_must_agree_on_what_it_reads(config):
    changed = copy.deepcopy(config)
    changed["models"]["s3rec"]["variants"]["ISP"] = {"aap_weight": 0, "map_weight": 0}  # no own `pretraining` name
    with pytest.raises(ElcrecError, match=r"variants 'ISP' and 'cost' on beauty name the same pre-training 'default'"):
        expand(changed)


def test_shared_runs_are_one_key(grid):
    base = RunKey("beauty", "elcrec", "ELCRec", 1)
    assert all(base in grid.experiments[name] for name in ("table1", "ablation", "sensitivity"))
    # Beauty's paper values are alpha 10 and k 256: those sweep points are the base run itself
    beauty = {key.variant for key in grid.experiments["sensitivity"] if key.dataset == "beauty"}
    assert beauty == {"ELCRec", "alpha-0.01", "alpha-0.1", "alpha-1", "alpha-100", "k-32", "k-64", "k-128", "k-512"}
    sports = {key.variant for key in grid.experiments["sensitivity"] if key.dataset == "sports"}
    assert "alpha-10" in sports and "alpha-1" not in sports and "k-512" not in sports and "k-256" in sports


def test_overrides_reach_the_resolved_settings(grid):
    yelp = grid.runs[RunKey("yelp", "elcrec", "alpha-0.01", 1)]
    assert (yelp["alpha"], yelp["clusters"], yelp["layers"], yelp["fusion"]) == (0.01, 256, 2, "concat")
    assert grid.runs[RunKey("toys", "elcrec", "k-64", 1)]["clusters"] == 64
    cost = grid.runs[RunKey("sports", "iclrec", "cost", 1)]
    assert (cost["epochs"], cost["patience"], cost["layers"]) == (300, 300, 2)
    assert grid.exclusive == frozenset(grid.experiments["cost"])  # timed runs train alone
    assert grid.runs[RunKey("ml-1m", "iclrec", "default", 3)]["layers"] == 2


def test_a_run_directory_name_gives_its_settings(grid, config):
    for key, settings in grid.runs.items():
        assert settings_of_run_dir(config, key.run_dir) == settings, key
    assert settings_of_run_dir(config, "results/runs/beauty/elcrec/alpha-0.5/seed7")["alpha"] == 0.5
    with pytest.raises(ElcrecError, match="not a run directory"):
        settings_of_run_dir(config, "results/runs/beauty/elcrec")
    with pytest.raises(ElcrecError, match="no variant 'fast'"):
        settings_of_run_dir(config, "results/runs/beauty/elcrec/fast/seed1")


def test_sweep_names():
    assert [sweep_value(value) for value in (0.01, 10.0, 64, 100)] == ["0.01", "10", "64", "100"]
    assert SWEEP_VARIANT.match("alpha-0.01").group("label", "value") == ("alpha", "0.01")
    assert SWEEP_VARIANT.match("B+ICL") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["experiments"]["ablation"].update(datasets=["beuty"]), "experiments.ablation.datasets"),
        (lambda c: c["experiments"]["sensitivity"].pop("base"), "a sweep needs `base"),
        (
            lambda c: c["experiments"]["sensitivity"]["sweep"].update(tau={"setting": "tua", "values": [1]}),
            "experiments.sensitivity: models.elcrec.variants.tau-1: unknown setting(s) ['tua']",
        ),
        (lambda c: c.update(experiments={}), "nothing to train"),
    ],
)
def test_errors_name_the_experiment(config, change, message):
    broken = copy.deepcopy(config)
    change(broken)
    with pytest.raises(ElcrecError, match=re.escape(message)):
        expand(broken)


MINE = {
    "datasets": {"beauty": {}, "toys": {}, "mine": {"route": "raw"}},
    "seeds": [1, 2, 3],
    "experiments": {
        "table1": {"datasets": ["beauty", "toys"], "runs": [["sasrec", "default"], ["elcrec", "ELCRec"]]},
        "own": {"datasets": ["mine"], "runs": [["sasrec", "default"]], "seeds": [7]},
    },
    "models": {"sasrec": {"variants": {"default": {}}}, "elcrec": {"variants": {"ELCRec": {}}}},
}


def test_experiments_only_keeps_the_chosen_experiments_and_the_datasets_they_use():
    chosen = select(MINE | {"experiments_only": ["own"]})
    assert list(chosen["experiments"]) == ["own"] and chosen["datasets"] == {"mine": {"route": "raw"}}
    assert sorted(expand(chosen).runs) == [RunKey("mine", "sasrec", "default", 7)]
    assert len(expand(MINE).runs) == 2 * 2 * 3 + 1  # without it: every experiment
    unchosen = MINE | {"experiments_only": None}
    assert select(MINE) is MINE and select(unchosen) is unchosen


def test_experiments_only_names_what_it_cannot_find():
    with pytest.raises(ElcrecError, match=re.escape("experiments_only: ['onw'] are not experiments of the config")):
        select(MINE | {"experiments_only": ["onw"]})
    unlisted = copy.deepcopy(MINE) | {"experiments_only": ["own"]}
    del unlisted["datasets"]["mine"]
    with pytest.raises(ElcrecError, match=re.escape("use ['mine'], which `datasets` does not list")):
        select(unlisted)

# Validation, helper functions and target lists. Everything model- or data-specific is looked up
# in the registry and the config here, so the rules stay declarative.

import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

REPO = Path(workflow.basedir).resolve()
sys.path.insert(0, str(REPO / "src"))

from elcrec.data.registry import interaction_sources, load_registry, resolve_dataset, source_of  # noqa: E402

validate(config, str(REPO / "config" / "schema.yaml"))
REGISTRY = load_registry([REPO / path for path in config["registries"]])
validate(REGISTRY, str(REPO / "config" / "datasets.schema.yaml"))

DATASETS = list(config["datasets"])
SPECS = {name: resolve_dataset(REGISTRY, name, config["datasets"][name], REPO) for name in DATASETS}
MIRROR_DIR = str((REPO / config["mirror_dir"]).resolve()) if config["mirror_dir"] else None

# The rules run the checkout's own code (src/ first on PYTHONPATH), so a run is traceable to
# this commit even where an older `elcrec` is installed or a conda env holds dependencies only.
ELCREC = f"PYTHONPATH={shlex.quote(str(REPO / 'src'))}${{PYTHONPATH:+:$PYTHONPATH}} python -m elcrec"


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    filename=r"[^/]+",


def download_args(wildcards):
    """Command-line arguments of `elcrec download` for one source file, shell-quoted."""
    source = source_of(SPECS[wildcards.dataset], wildcards.filename)
    args = ["--name", source.name, "--retries", config["download"]["retries"],
            "--timeout", config["download"]["timeout_s"]]
    if source.url:
        args += ["--url", source.url]
    if source.digest:
        args += [f"--{source.algorithm}", source.digest]
    if MIRROR_DIR:
        args += ["--mirror-dir", MIRROR_DIR]
    return " ".join(shlex.quote(str(arg)) for arg in args)


def raw_files(wildcards):
    names = interaction_sources(SPECS[wildcards.dataset])
    return [f"resources/raw/{wildcards.dataset}/{name}" for name in names]


def provenance_records(wildcards):
    names = interaction_sources(SPECS[wildcards.dataset])
    return [f"resources/provenance/{wildcards.dataset}/{name}.json" for name in names]


def dataset_spec(wildcards):
    return json.dumps(SPECS[wildcards.dataset], sort_keys=True)


def sequence_targets():
    return [f"resources/sequences/{name}.{kind}" for name in DATASETS for kind in ("txt", "stats.json")]


def all_targets():
    return sequence_targets()

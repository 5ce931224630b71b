# Validation, helper functions and target lists. Everything model- or data-specific is looked up
# in the registry and the config here, so the rules stay declarative.

import json
import re
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir).resolve()
sys.path.insert(0, str(REPO / "src"))

import jsonschema  # noqa: E402

from elcrec import PRETRAIN_DIR, RUN_DIR, ElcrecError  # noqa: E402
from elcrec.data.download import file_url_path  # noqa: E402
from elcrec.data.registry import (  # noqa: E402
    attribute_sources,
    interaction_sources,
    load_registry,
    pretrained_sources,
    reference_sources,
    resolve_dataset,
    source_of,
)
from elcrec.official import checks as official_checks  # noqa: E402
from elcrec.experiments import PretrainKey, RunKey, expand as expand_grid, select as select_experiments  # noqa: E402
from elcrec.experiments import summary as grid_summary  # noqa: E402
from elcrec.scheduling import SLOT, job_resources, slot_capacity  # noqa: E402
from elcrec.settings import resolve as resolve_settings  # noqa: E402
from snakemake.resources import Resource  # noqa: E402
from elcrec.report.tables import TABLE_NAMES  # noqa: E402
from elcrec.schema import describe as describe_schema_error  # noqa: E402


def validated(data, schema, what):
    """Snakemake's validation (it also fills in the schema's defaults), its error cut to the one
    line that names the key: its own message goes on to print the whole schema and config."""
    try:
        validate(data, schema)
    except WorkflowError as error:
        if not isinstance(error.__context__, jsonschema.ValidationError):
            raise
        raise WorkflowError(describe_schema_error(error.__context__, what)) from None


validated(config, str(REPO / "config" / "schema.yaml"), "config")
REGISTRY = load_registry([REPO / path for path in config["registries"]])
validated(REGISTRY, str(REPO / "config" / "datasets.schema.yaml"), "dataset registry")

# `experiments_only` cuts the grid and the datasets to the chosen experiments (a config of your own
# data: the paper's experiments and datasets, merged in from config.yaml, stay unused).
try:
    SELECTED = select_experiments(config)
    DATASETS = list(SELECTED["datasets"])
    SPECS = {name: resolve_dataset(REGISTRY, name, SELECTED["datasets"][name], REPO) for name in DATASETS}
except ElcrecError as error:
    raise WorkflowError(str(error)) from None
MIRROR_DIR = str((REPO / config["mirror_dir"]).resolve()) if config["mirror_dir"] else None

# Every run of every experiment, its settings resolved (and checked) now, so a typo stops the
# workflow before any job; runs shared between experiments are one key (one run directory).
try:
    GRID = expand_grid(SELECTED)
except ElcrecError as error:
    raise WorkflowError(str(error)) from None
RUN_SETTINGS = {(key.dataset, key.model, key.variant): settings for key, settings in GRID.runs.items()}
MODELS = sorted({key.model for key in GRID.runs})
print(grid_summary(GRID), file=sys.stderr)
# `device: auto` takes one unit of the `gpu` resource when this host has an NVIDIA driver, so
# `--resources gpu=1` runs one GPU job at a time; CPU-only hosts run jobs side by side by cores.
NVIDIA_HOST = shutil.which("nvidia-smi") is not None

# The rules run the checkout's own code (src/ first on PYTHONPATH), so a run is traceable to
# this commit even where an older `elcrec` is installed or a conda env holds dependencies only.
ELCREC = f"PYTHONPATH={shlex.quote(str(REPO / 'src'))}${{PYTHONPATH:+:$PYTHONPATH}} python -m elcrec"


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    filename=r"[^/]+",
    model="|".join(map(re.escape, MODELS)) or "(?!)",
    variant=r"[A-Za-z0-9][A-Za-z0-9+._-]*",
    pretraining=r"[A-Za-z0-9][A-Za-z0-9+._-]*",
    seed=r"\d+",


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


def local_source(wildcards):
    """The source file itself when it is a file:// URL that exists (a missing one is the download's
    own error, with its message), so that changing it re-runs the download."""
    path = file_url_path(source_of(SPECS[wildcards.dataset], wildcards.filename).url)
    return [str(path)] if path is not None and path.is_file() else []


def data_sources(dataset):
    """What the `sequences` job reads: the interaction files, then those only the attributes read."""
    spec = SPECS[dataset]
    return list(dict.fromkeys(interaction_sources(spec) + attribute_sources(spec)))


def raw_files(wildcards):
    return [f"resources/raw/{wildcards.dataset}/{name}" for name in data_sources(wildcards.dataset)]


def provenance_records(wildcards):
    return [f"resources/provenance/{wildcards.dataset}/{name}.json" for name in data_sources(wildcards.dataset)]


def dataset_spec(wildcards):
    return json.dumps(SPECS[wildcards.dataset], sort_keys=True)


def sequence_targets():
    kinds = ("txt", "stats.json", "attributes.json")
    return [f"resources/sequences/{name}.{kind}" for name in DATASETS for kind in kinds]


RUN_METRICS = f"{RUN_DIR}/metrics.json"


def run_settings(wildcards):
    key = (wildcards.dataset, wildcards.model, wildcards.variant)
    if key not in RUN_SETTINGS:
        raise WorkflowError(f"no run {key} in the experiment grid: check `experiments` and `models`")
    return RUN_SETTINGS[key]


def run_settings_json(wildcards):
    return json.dumps(run_settings(wildcards), sort_keys=True)


def run_threads(wildcards):
    """The run's torch threads; a run of an `exclusive` experiment (cost) takes every core, so
    no other job shares the machine while it is timed."""
    key = RunKey(wildcards.dataset, wildcards.model, wildcards.variant, int(wildcards.seed))
    if key in GRID.exclusive:
        return workflow.cores
    return int(run_settings(wildcards).get("threads") or 1)


# `--resources gpu=G` is G GPUs, shared by `jobs_per_gpu` training jobs each (src/elcrec/scheduling.py)
_GPUS = workflow.global_resources.get("gpu")
_SLOTS = slot_capacity(_GPUS.value if _GPUS is not None else None, config["jobs_per_gpu"])
if _SLOTS is not None:
    workflow.global_resources[SLOT] = Resource(SLOT, _SLOTS)


def run_gpu_resources(wildcards):
    device = str(run_settings(wildcards)["device"])
    uses_gpu = device.startswith("cuda") or (device == "auto" and NVIDIA_HOST)
    key = RunKey(wildcards.dataset, wildcards.model, wildcards.variant, int(wildcards.seed))
    return job_resources(uses_gpu, key in GRID.exclusive, config["jobs_per_gpu"])


def pretrained_input(wildcards):
    """The pre-training a fine-tuning run starts from (models with a pre-training stage), else none."""
    key = RunKey(wildcards.dataset, wildcards.model, wildcards.variant, int(wildcards.seed))
    pretrain_key = GRID.pretraining_of.get(key)
    return [f"{pretrain_key.directory}/pretrained.pt"] if pretrain_key else []


def pretrained_argument(wildcards):
    return "".join(f" --pretrained {shlex.quote(path)}" for path in pretrained_input(wildcards))


def pretraining_key(wildcards, pretraining=None):
    key = PretrainKey(wildcards.dataset, wildcards.model, pretraining or wildcards.pretraining)
    if key not in GRID.pretrainings:
        raise WorkflowError(f"no pre-training {key} in the experiment grid: check `experiments` and `models`")
    return key


def pretraining_settings_json(wildcards, pretraining=None):
    return json.dumps(GRID.pretrainings[pretraining_key(wildcards, pretraining)], sort_keys=True)


def official_pretrained_file(wildcards):
    """The dataset's official pre-trained model (role `pretrained`), for the pre-training `official`."""
    names = pretrained_sources(SPECS[wildcards.dataset]) if wildcards.dataset in SPECS else []
    if not names:
        raise WorkflowError(
            f"dataset {wildcards.dataset!r}: its route has no official pre-trained model (role `pretrained`), "
            "so no run of it can name the pre-training 'official'"
        )
    return f"resources/raw/{wildcards.dataset}/{names[0]}"


def pretraining_threads(wildcards):
    """Like run_threads: a pre-training an exclusive (timed) run starts from takes every core."""
    key = pretraining_key(wildcards)
    if key in GRID.exclusive_pretrainings:
        return workflow.cores
    return int(GRID.pretrainings[key].get("threads") or 1)


def pretraining_gpu_resources(wildcards):
    key = pretraining_key(wildcards)
    device = str(GRID.pretrainings[key]["device"])
    uses_gpu = device.startswith("cuda") or (device == "auto" and NVIDIA_HOST)
    return job_resources(uses_gpu, key in GRID.exclusive_pretrainings, config["jobs_per_gpu"])


def run_targets():
    return [f"{key.run_dir}/metrics.json" for key in sorted(GRID.runs)]


# the seeds the analysis expects of every table cell: those the grid trains (`seeds`, or the
# chosen experiments' own)
ANALYSIS_SEEDS = sorted({key.seed for key in GRID.runs}) or config["seeds"]


# the analysis stage's files and the report's inputs (absolute: the working directory may be elsewhere)
PAPER_FILE = str(REPO / "config" / "paper.yaml")
CLAIMS_FILE = str(REPO / "config" / "claims.yaml")


def _shown_path(path):
    """A config file as the report names it: relative to the repository where it lies inside."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


# the config files of this run, the Snakefile's own first, then those that --configfile laid over it
# (workflow.configfiles lists the command line's first): the grid the analysis waits for
CONFIG_FILES = sorted(
    dict.fromkeys(_shown_path(path) for path in workflow.configfiles), key=lambda path: path != "config/config.yaml"
)
REPORT_TEMPLATES = sorted(str(path) for path in (REPO / "reports" / "templates").iterdir())
REPORT_TARGETS = ["results/report/report.html", "results/report/report.md"]
# the scale study (synthetic users) belongs to the paper's pipeline, not to a run of chosen experiments
SCALE_TABLES = [] if config.get("experiments_only") else ["results/tables/scale.csv"]


# the authors' released checkpoints: datasets whose chosen route names one (role `reference`),
# unless `released_checkpoints: false`
REFERENCE_DATASETS = [
    name for name in DATASETS if config.get("released_checkpoints", True) and reference_sources(SPECS[name])
]


def reference_checkpoint(wildcards):
    if wildcards.dataset not in REFERENCE_DATASETS:
        raise WorkflowError(f"dataset {wildcards.dataset!r}: its route has no released checkpoint (role `reference`)")
    return f"resources/raw/{wildcards.dataset}/{reference_sources(SPECS[wildcards.dataset])[0]}"


def reference_setting(wildcards, name):
    """The released model's shape: the dataset's ELCRec settings of the config (layers, clusters)."""
    return resolve_settings(config, wildcards.dataset, "elcrec", "ELCRec")[name]


# a check against the official code (src/elcrec/official/) runs where the dataset's route ships
# the weights its fixture was made with (S3-Rec's pre-trained model, the released ELCRec checkpoint),
# or once, as results/official/fixture/{model}.json, where the fixture holds the weights itself and
# the grid trains the model
OFFICIAL_CHECKS = official_checks()


def _official_weights(dataset):
    names = pretrained_sources(SPECS[dataset])
    return names + (reference_sources(SPECS[dataset]) if dataset in REFERENCE_DATASETS else [])


def official_check_targets():
    on_data = [
        f"results/official/{dataset}/{model}.json"
        for dataset in DATASETS
        for model, spec in OFFICIAL_CHECKS.items()
        if spec["weights"] is not None and spec["weights"] in _official_weights(dataset)
    ]
    # the checks on a fixture's own weights need no data: one for each model the grid trains (a check
    # of a variant's official code names its model)
    fixtures = [m for m, spec in OFFICIAL_CHECKS.items() if spec["weights"] is None and spec.get("model", m) in MODELS]
    return on_data + [f"results/official/fixture/{model}.json" for model in fixtures]


def official_fixture_files(check):
    fixture = REPO / "tests" / "data" / "official" / OFFICIAL_CHECKS[check]["fixture"]
    return [f"{fixture}.npz", f"{fixture}.json"]


def official_check_inputs(wildcards):
    weights = f"resources/raw/{wildcards.dataset}/{OFFICIAL_CHECKS[wildcards.model]['weights']}"
    return {"weights": weights, "fixture": official_fixture_files(wildcards.model)}


def reference_targets():
    return [f"results/reference/{name}/metrics.json" for name in REFERENCE_DATASETS]


def all_targets():
    return sequence_targets() + run_targets() + reference_targets() + REPORT_TARGETS

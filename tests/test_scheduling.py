"""scheduling.py: training jobs share a GPU in slots, cost runs take a whole GPU; checked on the
real workflow (a pretend NVIDIA host, dry run) and by running sleeping jobs under Snakemake."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from elcrec.scheduling import SLOT, job_resources, slot_capacity


def test_slot_arithmetic():
    assert slot_capacity(None, 4) is None and slot_capacity(0, 4) is None
    assert slot_capacity(1, 4) == 4 and slot_capacity(2, 4) == 8
    assert job_resources(True, False, 4) == {"gpu": 0, SLOT: 1}
    assert job_resources(True, True, 4) == {"gpu": 0, SLOT: 4}  # a timed run takes the whole GPU
    assert job_resources(True, False, 1) == {"gpu": 1, SLOT: 1}  # one job per GPU request (SLURM)
    assert job_resources(False, True, 4) == {"gpu": 0, SLOT: 0}


def pretend_nvidia_host(tmp_path: Path) -> dict:
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho pretend\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return {
        **os.environ,
        "PATH": f"{tool.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


def test_the_workflow_gives_training_jobs_one_slot_and_cost_runs_a_whole_gpu(tmp_path):
    targets = [
        "results/runs/beauty/sasrec/default/seed1/metrics.json",
        "results/runs/beauty/elcrec/cost/seed1/metrics.json",
    ]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    result = subprocess.run(
        [*command, "-n", *targets, "--resources", "gpu=1"],
        cwd=REPO,
        env=pretend_nvidia_host(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = result.stdout.split("rule train:")[1:]
    resources = {
        job.split("output: ")[1].split("/metrics.json")[0]: job.split("resources: ")[1].split("\n")[0] for job in jobs
    }
    assert resources["results/runs/beauty/sasrec/default/seed1"].endswith("gpu=0, gpu_slot=1")
    assert resources["results/runs/beauty/elcrec/cost/seed1"].endswith("gpu=0, gpu_slot=4")  # config: jobs_per_gpu 4


SLEEPERS = """
import sys
sys.path.insert(0, {src!r})
from snakemake.resources import Resource
from elcrec.scheduling import SLOT, job_resources, slot_capacity

gpus = workflow.global_resources.get("gpu")
slots = slot_capacity(gpus.value if gpus is not None else None, 4)
if slots is not None:
    workflow.global_resources[SLOT] = Resource(SLOT, slots)

rule all:
    input: expand("out/{{kind}}{{i}}.txt", kind=["train"], i=range(8)) + ["out/cost0.txt"]

rule job:
    output: "out/{{kind}}{{i}}.txt"
    resources:
        gpu_slot=lambda w: job_resources(True, w.kind == "cost", 4)[SLOT],
    shell: "date +%s.%N > {{output}}; sleep 1.5; date +%s.%N >> {{output}}"
"""


def slots_in_use(folder: Path) -> list[int]:
    """At each job's start: the slots held then (a training job 1, the cost run a whole GPU's 4)."""
    spans = [
        (*map(float, path.read_text().split()), 4 if path.name.startswith("cost") else 1)
        for path in folder.glob("*.txt")
    ]
    return [sum(slots for start, end, slots in spans if start <= moment < end) for moment, _, _ in spans]


def test_snakemake_admits_jobs_per_gpu_trainings_at_once_and_the_cost_run_alone(tmp_path):
    for gpus in (1, 2):
        work = tmp_path / f"gpu{gpus}"
        work.mkdir()
        (work / "Snakefile").write_text(SLEEPERS.format(src=str(REPO / "src")))
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "16", "--resources", f"gpu={gpus}", "-q"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        # never more than 4 slots a GPU in use, and at some moment all of them: 4 trainings share one
        # GPU, the cost run holds a GPU alone, and gpu=2 doubles what runs at once
        assert max(slots_in_use(work / "out")) == 4 * gpus

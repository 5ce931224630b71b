"""How training jobs share GPUs under Snakemake (`snakemake --resources gpu=G`).

`--resources gpu=G` means G GPUs. Training jobs are small (64 dims, batch 256, 50 positions), so
one alone leaves most of a GPU idle; `jobs_per_gpu` of them share each GPU. Snakemake resources
are integers (a fraction such as 0.25 is truncated to 0 and limits nothing), so the workflow
counts in slots instead: it adds a resource `gpu_slot` of G x jobs_per_gpu, a training job takes
one slot and a run of an exclusive experiment (the cost runs, timed alone) a whole GPU's slots.
With `jobs_per_gpu: 1` (the SLURM profile: one sbatch job per GPU request) a job takes `gpu=1`
itself, which the executor turns into a GPU request.
"""

from __future__ import annotations

SLOT = "gpu_slot"


def slot_capacity(gpus: int | None, jobs_per_gpu: int) -> int | None:
    """The `gpu_slot` resource for `--resources gpu=gpus`; None when no GPU count was given (then
    nothing limits GPU jobs, as Snakemake treats any undeclared resource)."""
    if not gpus:
        return None
    return int(gpus) * int(jobs_per_gpu)


def job_resources(uses_gpu: bool, exclusive: bool, jobs_per_gpu: int) -> dict[str, int]:
    """A training job's `gpu` and `gpu_slot`: one slot, a whole GPU's slots when timed alone, none on the CPU."""
    if not uses_gpu:
        return {"gpu": 0, SLOT: 0}
    return {"gpu": int(jobs_per_gpu == 1), SLOT: jobs_per_gpu if exclusive else 1}

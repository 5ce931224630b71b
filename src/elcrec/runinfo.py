"""Facts about the machine and the code a run records next to its numbers."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from elcrec import __version__
from elcrec.process import subnormals_flushed

LIBRARIES = ("torch", "numpy", "scipy", "pandas", "faiss-cpu", "snakemake")


def resolve_device(requested: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; `cuda` without a GPU is an error, not a fallback."""
    from elcrec import ElcrecError

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ElcrecError(f"device {requested!r} was asked for but torch sees no CUDA device")
    return torch.device(requested)


def code_version() -> str:
    """`git describe --always --dirty` of the checkout holding this package, else the package version."""
    source = Path(__file__).resolve().parent
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return described or f"elcrec {__version__} (no git)"


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _cpuinfo_field(name: str, cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The first `name : value` of /proc/cpuinfo (Linux), else ""."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def native_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); None where unknown.

    Without it, CPU autocast to bfloat16 (`amp: true`) is emulated: an ELCRec Beauty epoch took
    11x longer than in float32 on an AVX2-only AMD EPYC (docs/MEASUREMENTS.md).
    """
    flags = _cpuinfo_field("flags", cpuinfo)
    if not flags:
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def device_description(device: torch.device) -> str:
    """Where a number was measured: the GPU's name, or the CPU model, torch's vector ISA, threads and
    whether subnormals were flushed to zero (elcrec.process)."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = _cpuinfo_field("model name") or platform.processor() or platform.machine()
    described = f"cpu: {model} ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"
    return described + (", subnormals flushed" if subnormals_flushed() else "")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def current_memory_bytes(device: torch.device) -> int:
    """GPU: the memory torch holds allocated now; CPU: the process's resident set size now (Linux
    /proc; elsewhere the peak so far, the best the platform offers)."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_memory_bytes(device)


def peak_memory_bytes(device: torch.device) -> int:
    """GPU: the most memory torch allocated; CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

import pytest
import torch

from elcrec import ElcrecError
from elcrec.process import flush_subnormals
from elcrec.runinfo import (
    code_version,
    current_memory_bytes,
    device_description,
    library_versions,
    native_bfloat16,
    peak_memory_bytes,
    resolve_device,
)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ElcrecError, match="no CUDA device"):
            resolve_device("cuda")


def test_versions_and_memory():
    assert code_version()
    assert {"python", "torch", "numpy"} <= set(library_versions())
    assert peak_memory_bytes(torch.device("cpu")) > 10 * 2**20
    now = current_memory_bytes(torch.device("cpu"))
    with open("/proc/self/status", encoding="ascii") as handle:  # the kernel's own figure, in kB
        rss = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:"))
    assert now > 10 * 2**20 and abs(now - rss) < 8 * 2**20
    assert now <= peak_memory_bytes(torch.device("cpu")) * 1.01  # two kernel counters, nearly equal


def test_cpu_description_and_bfloat16_flags(tmp_path):
    described = device_description(torch.device("cpu"))
    assert described.startswith("cpu: ") and f"({torch.backends.cpu.get_cpu_capability()})" in described
    assert described.endswith(f"{torch.get_num_threads()} threads")
    if flush_subnormals():
        assert device_description(torch.device("cpu")) == described + ", subnormals flushed"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512f\n")
    assert native_bfloat16(cpuinfo) is False
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert native_bfloat16(cpuinfo) is True
    assert native_bfloat16(tmp_path / "absent") is None

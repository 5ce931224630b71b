import pytest
import torch

from elcrec import ElcrecError
from elcrec.runinfo import code_version, current_memory_bytes, library_versions, peak_memory_bytes, resolve_device


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
    before = current_memory_bytes(torch.device("cpu"))
    held = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    assert before > 10 * 2**20 and current_memory_bytes(torch.device("cpu")) - before > 48 * 2**20
    assert current_memory_bytes(torch.device("cpu")) <= peak_memory_bytes(torch.device("cpu")) + 2**20
    del held

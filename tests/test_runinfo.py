import pytest
import torch

from elcrec import ElcrecError
from elcrec.runinfo import code_version, library_versions, peak_memory_bytes, resolve_device


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

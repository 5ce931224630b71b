import platform
import subprocess
import sys

import pytest

from elcrec.process import keep_freed_memory

# A fresh process: whether torch's worker threads flush depends on when its thread pool starts.
# 2**20 products of 1e-38 and 0.5 (subnormal) split over 2 threads, and a matmul with a subnormal
# operand (MKL's threads); printed: how many results are not zero.
PROBE = """
import sys, torch
from elcrec.process import prepare_process, subnormals_flushed
prepare_process(keep_subnormals=sys.argv[1] == "keep")
torch.set_num_threads(2)
halves = torch.full((2**20,), 1e-38) * 0.5
product = torch.ones(64, 256) @ torch.full((256, 512), 1e-39)
print(subnormals_flushed(), int((halves != 0).sum()), int((product != 0).sum()))
"""


def probe(mode: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_allocator_settings_apply_on_glibc():
    assert keep_freed_memory() is True


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="FTZ/DAZ are x86's")
def test_subnormals_are_flushed_in_every_thread_unless_kept():
    assert probe("flush") == ["True", "0", "0"]  # the worker threads too, not only the main one
    assert probe("keep") == ["False", str(2**20), str(64 * 512)]  # the control: they exist unflushed

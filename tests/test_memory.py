import platform

import pytest

from elcrec.memory import keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_allocator_settings_apply_on_glibc():
    assert keep_freed_memory() is True

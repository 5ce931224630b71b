"""The committed fixtures are exactly what tests/data/make_fixtures.py writes."""

import importlib.util

from conftest import FIXTURES


def test_generator_reproduces_the_committed_fixtures(tmp_path):
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    digests = module.write(tmp_path)
    for name in digests:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name
    assert (tmp_path / "SHA256SUMS").read_text() == (FIXTURES / "SHA256SUMS").read_text()

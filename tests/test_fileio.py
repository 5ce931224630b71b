import hashlib

import pytest

from elcrec.fileio import atomic_path, file_digest, save_torch_atomic, write_json_atomic


def test_digests_match_hashlib(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_digest(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(b"abc" * 1000).hexdigest()
    with pytest.raises(ValueError, match="unknown digest"):
        file_digest(path, "sha1")


def test_atomic_path_moves_into_place_only_on_success(tmp_path):
    destination = tmp_path / "sub" / "out.txt"
    with atomic_path(destination) as temporary:
        temporary.write_text("done")
        assert not destination.exists()
    assert destination.read_text() == "done"

    with pytest.raises(RuntimeError), atomic_path(destination) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert destination.read_text() == "done"
    assert sorted(p.name for p in destination.parent.iterdir()) == ["out.txt"]


def test_write_json_atomic(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "x.json").read_text().startswith('{\n  "a"')


def test_save_torch_atomic_round_trips_and_leaves_only_the_file(tmp_path):
    import torch

    save_torch_atomic(tmp_path / "state.pt", {"weights": torch.arange(4.0), "epoch": 3})
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    assert torch.equal(loaded["weights"], torch.arange(4.0)) and loaded["epoch"] == 3
    assert [path.name for path in tmp_path.iterdir()] == ["state.pt"]


def test_atomic_writes_are_readable_by_others_as_the_umask_allows(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "shared.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600

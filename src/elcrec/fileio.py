"""File helpers shared by every stage: atomic writes (nothing half-written is ever left at the
destination) and file digests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DIGEST_ALGORITHMS = ("sha256", "md5")


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    if algorithm not in DIGEST_ALGORITHMS:
        raise ValueError(f"unknown digest algorithm {algorithm!r}; expected one of {DIGEST_ALGORITHMS}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; move it into place only if the block succeeds.

    The temporary file lives in the same folder so the final rename is atomic. On any failure
    (including KeyboardInterrupt) the temporary file is removed and the destination untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other readers
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(destination: str | Path, text: str) -> None:
    with atomic_path(destination) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(destination: str | Path, payload: Any) -> None:
    write_text_atomic(destination, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_torch_atomic(destination: str | Path, payload: Any) -> None:
    """`torch.save` through a temporary file (model files, pre-trainings, checkpoints)."""
    import torch  # here, not at the top: the data stage's commands do not need torch

    with atomic_path(destination) as temporary:
        torch.save(payload, temporary)

"""Fetch one source file into resources/raw, verified against its checksum.

Order of places tried: the configured mirror folder (a file of the same name), then the
source URL (http, https or file://). The bytes land in a temporary file beside the
destination and are renamed into place only after the checksum matched, so a mismatch or an
interrupted transfer leaves nothing behind.

Sources without a published checksum are trusted on first use: the sha256 of the first
download is written next to the file (`<name>.tofu.sha256`) and every later download must
match it. The provenance record says which of the two kinds of verification applied.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from elcrec import ElcrecError
from elcrec.fileio import DIGEST_ALGORITHMS, atomic_path, file_digest, write_text_atomic

TOFU_SUFFIX = ".tofu.sha256"


class ChecksumMismatch(ElcrecError):
    pass


class DownloadError(ElcrecError):
    pass


@dataclass(frozen=True)
class Source:
    """One file of a dataset as the registry names it."""

    name: str
    url: str | None
    algorithm: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if (self.algorithm is None) != (self.digest is None):
            raise ValueError(f"source {self.name}: give both a digest algorithm and a digest, or neither")
        if self.algorithm is not None and self.algorithm not in DIGEST_ALGORITHMS:
            raise ValueError(f"source {self.name}: unknown digest algorithm {self.algorithm!r}")


def tofu_record_path(destination: Path) -> Path:
    return destination.with_name(destination.name + TOFU_SUFFIX)


def fetch(
    source: Source,
    destination: str | Path,
    mirror_dir: str | Path | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
) -> dict:
    """Place `source` at `destination`, verified; return its provenance record."""
    destination = Path(destination)
    algorithm, expected, verification = _expected_digest(source, destination)
    with atomic_path(destination) as temporary:
        origin = _copy_from_mirror(source, mirror_dir, temporary)
        if origin is None:
            if source.url is None:
                raise DownloadError(
                    f"{source.name}: this source has no public URL; place the file in the "
                    f"configured mirror_dir (now: {mirror_dir or 'not set'})"
                )
            origin = source.url
            _fetch_url(source.url, temporary, retries=retries, timeout_s=timeout_s)
        actual = file_digest(temporary, algorithm)
        if expected is not None and actual != expected:
            raise ChecksumMismatch(
                f"{source.name}: {algorithm} mismatch for the file from {origin}: "
                f"expected {expected}, found {actual}; nothing was kept"
            )
    sha256 = actual if algorithm == "sha256" else file_digest(destination, "sha256")
    if expected is None:
        write_text_atomic(tofu_record_path(destination), f"{sha256}  {source.name}\n")
        verification = "trust-on-first-use: first download, digest recorded"
    return {
        "name": source.name,
        "url": source.url,
        "origin": str(origin),
        "algorithm": algorithm,
        "expected": expected,
        "sha256": sha256,
        "bytes": destination.stat().st_size,
        "verification": verification,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _expected_digest(source: Source, destination: Path) -> tuple[str, str | None, str]:
    if source.digest is not None:
        return source.algorithm, source.digest.lower(), "registry checksum"
    record = tofu_record_path(destination)
    if record.exists():
        recorded = record.read_text(encoding="utf-8").split()[0].lower()
        return "sha256", recorded, f"trust-on-first-use: matches the digest recorded in {record.name}"
    return "sha256", None, "trust-on-first-use"


def _copy_from_mirror(source: Source, mirror_dir: str | Path | None, temporary: Path) -> Path | None:
    if mirror_dir is None:
        return None
    candidate = Path(mirror_dir) / source.name
    if not candidate.is_file():
        return None
    shutil.copyfile(candidate, temporary)
    return candidate


def _fetch_url(url: str, temporary: Path, retries: int, timeout_s: float) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.netloc + parsed.path))
        if not path.is_file():
            raise DownloadError(f"{url}: no such file {path}")
        shutil.copyfile(path, temporary)
        return
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: unsupported URL scheme {parsed.scheme!r}; expected http, https or file")
    for attempt in range(retries + 1):
        try:
            _http_get(url, temporary, timeout_s)
            return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == retries:
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
            failure = f"HTTP {error.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, IncompleteDownload) as error:
            if attempt == retries:
                raise DownloadError(f"{url}: failed after {retries + 1} attempts: {error}") from error
            failure = str(error)
        wait_s = min(2**attempt, 30)
        tqdm.write(f"{url}: {failure}; retrying in {wait_s} s ({attempt + 1}/{retries})")
        time.sleep(wait_s)


class IncompleteDownload(OSError):
    pass


def _http_get(url: str, temporary: Path, timeout_s: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "elcrec-pipeline"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        length = response.headers.get("Content-Length")
        expected_bytes = int(length) if length and length.isdigit() else None
        received = 0
        with (
            open(temporary, "wb") as handle,
            tqdm(total=expected_bytes, unit="B", unit_scale=True, desc=Path(url).name, mininterval=2) as progress,
        ):
            for chunk in iter(lambda: response.read(1 << 20), b""):
                handle.write(chunk)
                received += len(chunk)
                progress.update(len(chunk))
    if expected_bytes is not None and received != expected_bytes:
        raise IncompleteDownload(f"received {received} of {expected_bytes} bytes")

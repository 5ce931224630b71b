"""Fetch one source file into resources/raw, verified against its checksum.

Order of places tried: the configured mirror folder (a file of the same name), then the
source URL (http, https or file://). The bytes land in a temporary file beside the
destination and are renamed into place only after the checksum matched, so a mismatch or an
interrupted transfer leaves nothing behind.

Sources without a published checksum are trusted on first use: the sha256 of the first
download is written next to the file (`<name>.tofu.sha256`) and every later download must
match it. The provenance record says which of the two kinds of verification applied. A
mismatch names that record: deleting it is how a changed source (a fixed local file, a
re-released upstream file) becomes trusted instead.

A download that fails never costs the verified copy already at the destination: the new bytes
replace it only once verified (the workflow's rule also marks its outputs `update`, so Snakemake
neither deletes them before a forced re-run nor after a failed one).
"""

from __future__ import annotations

import os
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


def verified_copy_path(destination: Path) -> Path:
    """Where the last verified file is kept, out of Snakemake's reach (it deletes a job's outputs
    before re-running it): `<folder>/.verified/<name>`, a hard link, so no second copy on disk."""
    return destination.parent / ".verified" / destination.name


def fetch(
    source: Source,
    destination: str | Path,
    mirror_dir: str | Path | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
) -> dict:
    """Place `source` at `destination`, verified; return its provenance record.

    When the transfer itself fails (network, missing file) and the destination is gone, the
    kept copy is put back if it still has the digest a new download would have to match: a
    forced re-download that cannot reach its source keeps the verified file. A checksum mismatch
    never falls back: the source has changed, and the error says what to do about it.
    """
    destination = Path(destination)
    algorithm, expected, verification = _expected_digest(source, destination)
    kept = verified_copy_path(destination)
    failure = None
    try:
        origin, actual = _download_verified(source, destination, mirror_dir, retries, timeout_s, algorithm, expected)
    except ChecksumMismatch:
        raise
    except DownloadError as error:
        usable = expected is not None and not destination.exists() and kept.is_file()
        if not (usable and file_digest(kept, algorithm) == expected):
            raise
        _link_or_copy(kept, destination)
        origin, actual, failure = kept, expected, str(error)
        verification += f"; the download failed ({error}), so the verified copy kept in {kept} was used"
    else:
        _link_or_copy(destination, kept)
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
        "download_error": failure,  # set when the kept copy stood in for a failed download
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _download_verified(
    source: Source,
    destination: Path,
    mirror_dir: str | Path | None,
    retries: int,
    timeout_s: float,
    algorithm: str,
    expected: str | None,
) -> tuple[str | Path, str]:
    """Fetch into a temporary file beside `destination`; rename it into place only if verified."""
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
            raise ChecksumMismatch(_mismatch(source, destination, origin, algorithm, expected, actual))
    return origin, actual


def _mismatch(source: Source, destination: Path, origin, algorithm: str, expected: str, actual: str) -> str:
    kept = verified_copy_path(destination)
    if destination.exists():
        left = f"the file already at {destination} is left as it was"
    elif kept.is_file():
        left = f"the last verified copy stays in {kept}"
    else:
        left = "nothing was kept"
    if source.digest is not None:
        return (
            f"{source.name}: {algorithm} mismatch for the file from {origin}: expected {expected}, found {actual}; "
            + left
        )
    record = tofu_record_path(destination)
    return (
        f"{source.name}: sha256 mismatch for the file from {origin}: expected {expected}, recorded when it was "
        f"first trusted in {record}, found {actual}; {left}. If the new file is the one to trust (you fixed it, "
        f"or it was re-released), delete {record} and run again"
    )


def _link_or_copy(source: Path, target: Path) -> None:
    """`target` becomes `source`'s bytes, atomically: a hard link where the filesystem has them
    (a multi-GB review dump is not stored twice), a copy elsewhere."""
    with atomic_path(target) as temporary:
        temporary.unlink()
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copy2(source, temporary)


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


def file_url_path(url: str | None) -> Path | None:
    """The local path of a file:// URL (None for any other URL)."""
    parsed = urllib.parse.urlparse(url or "")
    return Path(urllib.request.url2pathname(parsed.netloc + parsed.path)) if parsed.scheme == "file" else None


def _fetch_url(url: str, temporary: Path, retries: int, timeout_s: float) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = file_url_path(url)
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

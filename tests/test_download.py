import hashlib
import http.server
import threading

import pytest

from elcrec.data.download import ChecksumMismatch, DownloadError, Source, fetch, tofu_record_path, verified_copy_path

PAYLOAD = b"1 1 2 3\n2 2 3 4\n"
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def origin(tmp_path):
    path = tmp_path / "origin" / "data.txt"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def test_file_url_verified_by_sha256(tmp_path, origin):
    record = fetch(Source("data.txt", origin.as_uri(), "sha256", SHA), tmp_path / "raw" / "data.txt")
    assert (tmp_path / "raw" / "data.txt").read_bytes() == PAYLOAD
    assert record["verification"] == "registry checksum" and record["sha256"] == SHA
    assert record["download_error"] is None


def test_md5_verification(tmp_path, origin):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    record = fetch(Source("data.txt", origin.as_uri(), "md5", md5), tmp_path / "raw" / "data.txt")
    assert record["expected"] == md5 and record["sha256"] == SHA


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, origin):
    destination = tmp_path / "raw" / "data.txt"
    with pytest.raises(ChecksumMismatch) as error:
        fetch(Source("data.txt", origin.as_uri(), "sha256", "0" * 64), destination)
    message = str(error.value)
    assert "data.txt" in message and "0" * 64 in message and SHA in message
    assert list(destination.parent.iterdir()) == []


def test_trust_on_first_use_records_then_enforces(tmp_path, origin):
    destination = tmp_path / "raw" / "data.txt"
    first = fetch(Source("data.txt", origin.as_uri()), destination)
    assert first["verification"].startswith("trust-on-first-use: first download")
    assert tofu_record_path(destination).read_text().split()[0] == SHA

    destination.unlink()
    second = fetch(Source("data.txt", origin.as_uri()), destination)
    assert "matches the digest recorded" in second["verification"]

    destination.unlink()
    origin.write_bytes(PAYLOAD + b"3 9\n")  # the upstream file changed
    with pytest.raises(ChecksumMismatch, match="expected " + SHA):
        fetch(Source("data.txt", origin.as_uri()), destination)
    assert not destination.exists()


def test_a_changed_source_s_mismatch_names_the_trust_record_and_deleting_it_resets_trust(tmp_path, origin):
    destination = tmp_path / "raw" / "data.txt"
    fetch(Source("data.txt", origin.as_uri()), destination)
    fixed = PAYLOAD + b"3 9 8 7\n"
    origin.write_bytes(fixed)  # the user fixed the source file
    with pytest.raises(ChecksumMismatch) as error:
        fetch(Source("data.txt", origin.as_uri()), destination)
    record = tofu_record_path(destination)
    message = str(error.value)
    assert f"expected {SHA}, recorded when it was first trusted in {record}" in message
    assert f"found {hashlib.sha256(fixed).hexdigest()}; the file already at {destination} is left as it was" in message
    assert message.endswith(f"delete {record} and run again")
    assert destination.read_bytes() == PAYLOAD

    destination.unlink()  # as Snakemake does before it re-runs the job: the kept copy is named instead
    with pytest.raises(ChecksumMismatch, match=f"the last verified copy stays in {verified_copy_path(destination)}"):
        fetch(Source("data.txt", origin.as_uri()), destination)
    assert not destination.exists()  # a mismatch never falls back to the old bytes

    record.unlink()  # the reset
    reset = fetch(Source("data.txt", origin.as_uri()), destination)
    assert reset["verification"].startswith("trust-on-first-use: first download") and destination.read_bytes() == fixed
    assert record.read_text().split()[0] == hashlib.sha256(fixed).hexdigest()
    assert verified_copy_path(destination).read_bytes() == fixed


@pytest.mark.parametrize("failure", ["missing source", "wrong checksum"])
def test_a_failed_re_download_leaves_the_verified_file_in_place(tmp_path, origin, failure):
    destination = tmp_path / "raw" / "data.txt"
    fetch(Source("data.txt", origin.as_uri(), "sha256", SHA), destination)
    if failure == "missing source":
        origin.unlink()
    else:
        origin.write_bytes(b"1 9 9 9\n")
    with pytest.raises(DownloadError if failure == "missing source" else ChecksumMismatch):
        fetch(Source("data.txt", origin.as_uri(), "sha256", SHA), destination)
    assert destination.read_bytes() == PAYLOAD
    assert sorted(path.name for path in destination.parent.rglob("*")) == [".verified", "data.txt", "data.txt"]


def test_a_forced_re_download_that_cannot_reach_its_source_puts_the_verified_copy_back(tmp_path, origin):
    destination = tmp_path / "raw" / "data.txt"
    fetch(Source("data.txt", origin.as_uri(), "sha256", SHA), destination)
    kept = verified_copy_path(destination)
    assert kept.read_bytes() == PAYLOAD and kept.stat().st_ino == destination.stat().st_ino  # a link, not a copy
    destination.unlink()  # Snakemake removes a job's outputs before a forced re-run
    origin.unlink()
    record = fetch(Source("data.txt", origin.as_uri(), "sha256", SHA), destination)
    assert destination.read_bytes() == PAYLOAD and record["origin"] == str(kept) and record["sha256"] == SHA
    assert record["verification"].startswith("registry checksum; the download failed (") and record["download_error"]
    assert record["verification"].endswith(f"no such file {origin}), so the verified copy kept in {kept} was used")

    destination.unlink()
    kept.write_bytes(b"tampered\n")  # a kept copy is used only while it still has the expected digest
    with pytest.raises(DownloadError, match="no such file"):
        fetch(Source("data.txt", origin.as_uri(), "sha256", SHA), destination)
    assert not destination.exists()


def test_after_a_trust_reset_a_failed_download_cannot_fall_back(tmp_path, origin):
    destination = tmp_path / "raw" / "data.txt"
    fetch(Source("data.txt", origin.as_uri()), destination)
    destination.unlink()
    tofu_record_path(destination).unlink()  # nothing left to check the kept copy against
    origin.unlink()
    with pytest.raises(DownloadError, match="no such file"):
        fetch(Source("data.txt", origin.as_uri()), destination)
    assert not destination.exists() and verified_copy_path(destination).read_bytes() == PAYLOAD


def test_mirror_is_searched_first(tmp_path, origin):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "data.txt").write_bytes(PAYLOAD)
    record = fetch(Source("data.txt", "file:///nonexistent/data.txt", "sha256", SHA), tmp_path / "d.txt", mirror)
    assert record["origin"] == str(mirror / "data.txt")


def test_mirror_only_source_without_file_says_where_to_put_it(tmp_path):
    with pytest.raises(DownloadError, match="mirror_dir"):
        fetch(Source("manual.json", None), tmp_path / "manual.json", mirror_dir=tmp_path)


def test_unsupported_scheme_and_missing_file(tmp_path):
    with pytest.raises(DownloadError, match="scheme"):
        fetch(Source("x", "ftp://host/x"), tmp_path / "x")
    with pytest.raises(DownloadError, match="no such file"):
        fetch(Source("x", "file:///nonexistent/x"), tmp_path / "x")


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Fails the first request with 503, then serves the payload; 404 for /missing."""

    requests = 0

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        if self.path == "/missing":
            self.send_error(404)
        elif type(self).requests == 1:
            self.send_error(503)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FlakyHandler.requests = 0
    httpd = http.server.HTTPServer(("127.0.0.1", 0), FlakyHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_http_retries_server_errors(tmp_path, server, monkeypatch):
    monkeypatch.setattr("elcrec.data.download.time.sleep", lambda seconds: None)
    record = fetch(Source("data.txt", f"{server}/data.txt", "sha256", SHA), tmp_path / "data.txt", retries=2)
    assert record["sha256"] == SHA and FlakyHandler.requests == 2


def test_http_gives_up_after_retries(tmp_path, server, monkeypatch):
    monkeypatch.setattr("elcrec.data.download.time.sleep", lambda seconds: None)
    with pytest.raises(DownloadError, match="HTTP 503"):
        fetch(Source("data.txt", f"{server}/data.txt"), tmp_path / "data.txt", retries=0)
    assert not (tmp_path / "data.txt").exists()


def test_http_client_errors_are_not_retried(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(Source("missing", f"{server}/missing"), tmp_path / "missing", retries=3)
    assert FlakyHandler.requests == 1

import hashlib
import http.server
import threading

import pytest

from elcrec.data.download import ChecksumMismatch, DownloadError, Source, fetch, tofu_record_path

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

"""elcrec.cli.data: `elcrec download` and `elcrec sequences`."""

import hashlib
import json

from elcrec.cli import main


def test_download_mismatch_exits_2_with_one_clear_line(tmp_path, capsys):
    origin = tmp_path / "a.txt"
    origin.write_text("1 1 2 3\n")
    dest = tmp_path / "raw" / "a.txt"
    code = main(["download", "--url", origin.as_uri(), "--dest", str(dest), "--sha256", "f" * 64])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("elcrec download: error: a.txt: sha256 mismatch")
    assert not dest.exists()


def test_download_then_sequences_writes_file_and_stats(tmp_path, fixtures):
    raw = tmp_path / "raw" / "interactions.csv"
    record = tmp_path / "record.json"
    digest = hashlib.sha256((fixtures / "raw/interactions.csv").read_bytes()).hexdigest()
    url = (fixtures / "raw/interactions.csv").as_uri()
    assert main(["download", "--url", url, "--dest", str(raw), "--sha256", digest, "--record", str(record)]) == 0
    spec = {
        "name": "mine",
        "route": "raw",
        "format": "csv",
        "reader": {"user_column": "user_id", "item_column": "item_id"},
        "preprocessing": {"user_k": 5, "item_k": 5},
    }
    out, stats = tmp_path / "seq" / "mine.txt", tmp_path / "seq" / "mine.stats.json"
    args = ["sequences", "--spec", json.dumps(spec), "--inputs", str(raw), "--records", str(record)]
    assert main([*args, "--output", str(out), "--stats", str(stats)]) == 0
    result = json.loads(stats.read_text())
    assert (result["users"], result["items"], result["interactions"]) == (90, 48, 957)
    assert result["sources"][0]["sha256"] == digest and result["steps"]["raw"]["interactions"] == 973
    assert result["sequence_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_sequences_refuses_a_malformed_benchmark_file_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "Beauty.txt"
    bad.write_text("1 2 3\n2 two 3\n")
    spec = json.dumps({"name": "beauty", "route": "paper", "format": "sequences"})
    out = tmp_path / "seq" / "beauty.txt"
    code = main(
        ["sequences", "--spec", spec, "--inputs", str(bad), "--output", str(out), "--stats", str(tmp_path / "s.json")]
    )
    assert code == 2 and f"{bad}:2: expected integers" in capsys.readouterr().err
    assert not out.exists()


def test_sequences_refuses_a_benchmark_file_with_too_short_users_naming_file_and_line(tmp_path, capsys):
    short = tmp_path / "Mine.txt"
    short.write_text("1 1 2 3\n2 4 5\n")
    spec = json.dumps({"name": "mine", "route": "paper", "format": "sequences"})
    out = tmp_path / "seq" / "mine.txt"
    args = ["sequences", "--spec", spec, "--inputs", str(short), "--output", str(out), "--stats", str(tmp_path / "s")]
    assert main(args) == 2
    assert f"{short}:2: user 2 has 2 item(s), but every user needs at least 3" in capsys.readouterr().err
    assert not out.exists()
    with_preprocessing = json.dumps(
        {"name": "mine", "route": "paper", "format": "sequences", "preprocessing": {"user_k": 5}}
    )
    assert main(["sequences", "--spec", with_preprocessing, *args[3:]]) == 2
    assert "would not be applied" in capsys.readouterr().err


def test_sequences_refuses_preprocessing_that_leaves_users_too_short_for_the_split(tmp_path, capsys):
    raw = tmp_path / "mine.csv"  # user a: 3 items, b: 2, c: 1
    raw.write_text("user_id,item_id,timestamp\na,1,1\na,2,2\na,3,3\nb,1,1\nb,2,2\nc,3,1\n")
    spec = {
        "name": "mine",
        "route": "raw",
        "format": "csv",
        "reader": {"user_column": "user_id", "item_column": "item_id"},
    }
    spec["preprocessing"] = {"user_k": 1, "item_k": 1}
    out = tmp_path / "mine.txt"
    args = ["sequences", "--spec", json.dumps(spec), "--inputs", str(raw), "--output", str(out)]
    assert main([*args, "--stats", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert "dataset mine: after preprocessing {'user_k': 1, 'item_k': 1}, 2 users have fewer than 3 items" in error
    assert "(user 2: 2)" in error and "set preprocessing.user_k to 3 or more" in error and not out.exists()
    spec["preprocessing"] = {"user_k": 3, "item_k": 1}  # k-core keeps user a alone
    assert main(["sequences", "--spec", json.dumps(spec), *args[3:], "--stats", str(tmp_path / "s")]) == 0
    assert out.read_text() == "1 1 2 3\n"

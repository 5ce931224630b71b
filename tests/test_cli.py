import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys

from conftest import REPO

from elcrec.cli import build_parser, main


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


def test_train_then_evaluate_a_run(tmp_path, fixtures, capsys):
    sequences = str(fixtures / "benchmark" / "Beauty.txt")
    settings = json.dumps({"epochs": 2, "clusters": 4, "layers": 1, "device": "cpu"})
    run_dir = tmp_path / "run"
    args = ["train", "--sequences", sequences, "--model", "elcrec", "--settings", settings, "--seed", "2"]
    assert main([*args, "--threads", "1", "--run-dir", str(run_dir), "--variant", "ELCRec"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["settings"]["threads"] == 1 and metrics["variant"] == "ELCRec"
    if platform.machine() in ("x86_64", "AMD64"):  # elcrec.process's FTZ/DAZ, recorded with the run
        assert metrics["device"].endswith(", subnormals flushed")
    kept = tmp_path / "kept"
    assert main(["--keep-subnormals", *args, "--threads", "1", "--run-dir", str(kept)]) == 0
    kept_metrics = json.loads((kept / "metrics.json").read_text())
    assert not kept_metrics["device"].endswith("flushed") and kept_metrics["test"] == metrics["test"]
    capsys.readouterr()
    assert (
        main(["evaluate", str(run_dir / "model.pt"), "--sequences", sequences, "--json", str(tmp_path / "m.json")]) == 0
    )
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert float(printed["NDCG@20"]) == round(metrics["test"]["NDCG@20"], 4)


def test_pretrain_then_fine_tune_from_it(tmp_path, fixtures, capsys):
    sequences = str(fixtures / "benchmark" / "Beauty.txt")
    attributes = str(fixtures / "benchmark" / "Beauty_item2attributes.json")
    settings = json.dumps({"pretrain_epochs": 1, "epochs": 1, "layers": 1, "device": "cpu", "pretrain_batch_size": 256})
    out = tmp_path / "pretrain"
    args = [
        "pretrain",
        "--sequences",
        sequences,
        "--attributes",
        attributes,
        "--model",
        "s3rec",
        "--settings",
        settings,
    ]
    assert main([*args, "--out-dir", str(out), "--dataset", "beauty"]) == 0
    assert "s3rec pre-training default: 1 epochs" in capsys.readouterr().err
    train = [
        "train",
        "--sequences",
        sequences,
        "--model",
        "s3rec",
        "--settings",
        settings,
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert main(train) == 2
    assert "fine-tunes a pre-training: give --pretrained" in capsys.readouterr().err
    assert main([*train, "--pretrained", str(out / "pretrained.pt")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pretraining"]["epochs_run"] == 1 and metrics["pretraining"]["pretraining"] == "default"
    sasrec = ["train", "--sequences", sequences, "--model", "sasrec", "--settings", '{"epochs": 1}']
    assert main([*sasrec, "--run-dir", str(tmp_path / "s"), "--pretrained", str(out / "pretrained.pt")]) == 2
    assert "no pre-training stage" in capsys.readouterr().err
    # a dataset without attributes (the data stage's null marker): the default names it, ISP runs
    (tmp_path / "none.json").write_text("null\n")
    none = ["pretrain", "--sequences", sequences, "--attributes", str(tmp_path / "none.json"), "--model", "s3rec"]
    assert main([*none, "--settings", settings, "--out-dir", str(tmp_path / "p2"), "--dataset", "toys"]) == 2
    assert "dataset toys has no item attributes" in capsys.readouterr().err
    isp = json.dumps(json.loads(settings) | {"aap_weight": 0, "map_weight": 0})
    assert main([*none, "--settings", isp, "--out-dir", str(tmp_path / "p3")]) == 0


def test_train_refuses_unknown_settings(fixtures, tmp_path, capsys):
    args = ["train", "--sequences", str(fixtures / "benchmark" / "Beauty.txt"), "--model", "sasrec"]
    assert main([*args, "--settings", '{"alpah": 1}', "--run-dir", str(tmp_path)]) == 2
    assert "unknown setting(s) ['alpah'] for model 'sasrec'" in capsys.readouterr().err
    assert main([*args, "--settings", "[1]", "--run-dir", str(tmp_path)]) == 2


def test_evaluate_refuses_another_dataset(fixtures, tmp_path, capsys):
    beauty = str(fixtures / "benchmark" / "Beauty.txt")
    other = tmp_path / "other.txt"
    other.write_text("".join(f"{user} {user} {user + 1} {user + 2} 300\n" for user in range(1, 20)))
    settings = '{"epochs": 1, "device": "cpu", "layers": 1}'
    args = ["train", "--sequences", beauty, "--model", "sasrec", "--settings", settings, "--run-dir", str(tmp_path)]
    assert main(args) == 0
    code = main(["evaluate", str(tmp_path / "model.pt"), "--sequences", str(other)])
    assert code == 2 and "not the dataset this model was trained on" in capsys.readouterr().err


def test_analyse_then_report_from_run_directories(tmp_path, capsys):
    from run_helpers import write_run

    for seed in (1, 2):
        write_run(tmp_path / "runs", "beauty", "elcrec", "ELCRec", seed, 0.5)
    tables = tmp_path / "tables"
    common = ["--runs", str(tmp_path / "runs"), "--sequences-dir", str(tmp_path), "--seeds", "1", "2"]
    assert main(["analyse", *common, "--out", str(tables)]) == 0
    assert "from 2 runs" in capsys.readouterr().err and (tables / "table1.csv").exists()
    assert main(["report", "--tables", str(tables), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "report.md").exists()
    # without --seeds: the seeds the runs have (1 and 2), not a config's
    assert main(["analyse", *common[:-3], "--out", str(tmp_path / "inferred")]) == 0
    assert (tmp_path / "inferred" / "missing.csv").read_text() == (tables / "missing.csv").read_text()
    assert main(["analyse", *common[:-2], "1", "2", "3", "--out", str(tmp_path / "three")]) == 0
    assert (tmp_path / "three" / "missing.csv").read_text() != (tables / "missing.csv").read_text()


def test_report_without_tables_is_one_clear_error(tmp_path, capsys):
    assert main(["report", "--tables", str(tmp_path / "nothing"), "--out", str(tmp_path / "report")]) == 2
    assert "run `elcrec analyse` first" in capsys.readouterr().err and not (tmp_path / "report").exists()


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {"elcrec": parser, **subparsers.choices}


def test_every_option_of_every_command_has_help_and_shows_its_default():
    commands = _commands()
    assert len(commands) == 14  # elcrec itself and its thirteen commands
    shown = 0
    for name, command in commands.items():
        text = " ".join(command.format_help().split())  # undo the line wrapping
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction | argparse._VersionAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"
            if not action.required and action.default is not None and action.default is not False:
                assert f"(default: {action.default})" in text, f"{name} {action.option_strings}"
                shown += 1
    # download 2, train 2, pretrain 1, import-pretrained 1, evaluate 3, bench 4, estimate-gpu 3, scale 4,
    # analyse 7, report 2
    assert shown == 29
    download = " ".join(commands["download"].format_help().split())
    assert "--retries RETRIES extra attempts on network errors (default: 3)" in download
    assert "--dest DEST where the verified file goes --name" in download  # required: no default shown
    assert "(default: [10000, 100000, 1000000])" in " ".join(commands["scale"].format_help().split())


def _elcrec(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "elcrec", *args], capture_output=True, text=True, env=env, timeout=120)


def test_log_keeps_everything_and_the_terminal_gets_the_error(tmp_path):
    origin = tmp_path / "a.txt"
    origin.write_text("1 1 2 3\n")
    log = tmp_path / "logs" / "download.log"
    args = ["--log", str(log), "download", "--url", origin.as_uri(), "--dest", str(tmp_path / "raw" / "a.txt")]
    good = _elcrec(*args, "--sha256", hashlib.sha256(b"1 1 2 3\n").hexdigest())
    assert good.returncode == 0 and good.stderr == ""  # success: the terminal stays quiet
    assert "a.txt: registry checksum" in log.read_text()

    bad = _elcrec(*args, "--sha256", "f" * 64)
    cause = "elcrec download: error: a.txt: sha256 mismatch"
    assert bad.returncode == 2 and bad.stderr.startswith(cause) and f"(log: {log})" in bad.stderr
    assert log.read_text().startswith(cause)  # the log is the job's own, rewritten


def test_log_takes_an_unexpected_failure_s_traceback_and_the_terminal_its_last_line(tmp_path, fixtures):
    broken = tmp_path / "model.pt"
    broken.write_text("not a model file\n")
    log = tmp_path / "evaluate.log"
    sequences = str(fixtures / "benchmark" / "Beauty.txt")
    result = _elcrec("--log", str(log), "evaluate", str(broken), "--sequences", sequences, "--device", "cpu")
    assert result.returncode == 1 and "Traceback (most recent call last)" in log.read_text()
    lines = result.stderr.splitlines()
    assert lines[0].startswith("elcrec evaluate: UnpicklingError: ") and lines[-1] == f"(traceback in {log})"
    assert "Traceback" not in result.stderr

"""elcrec.cli: the parser every command shares, --log and the exit codes."""

import argparse
import hashlib
import os
import subprocess
import sys

from conftest import REPO

from elcrec.cli import build_parser


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

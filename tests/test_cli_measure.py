"""elcrec.cli.measure: `elcrec bench`'s option checks (the timings themselves: test_bench.py)."""

import pytest

from elcrec.cli import main


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1, got 0"),
        (["--steps", "2", "--jobs", "2"], "--steps times the steps of one job"),
        (["--jobs", "2", "--pretraining"], "--jobs times training epochs only"),
    ],
)
def test_bench_refuses_options_that_do_not_go_together(fixtures, capsys, options, message):
    sequences = str(fixtures / "benchmark" / "Beauty.txt")
    assert main(["bench", "--sequences", sequences, "--model", "sasrec", *options]) == 2
    assert f"elcrec bench: error: {message}" in capsys.readouterr().err

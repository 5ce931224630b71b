"""elcrec.cli.results: `elcrec analyse` and `elcrec report`."""

from elcrec.cli import main


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

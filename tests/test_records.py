"""report/records.py: run directories -> one row per finished run, and the runs of other data."""

import pytest
from run_helpers import write_run, write_stats

from elcrec import ElcrecError
from elcrec.report import records


def test_one_row_per_finished_run_with_its_identity_provenance_and_test_metrics(tmp_path):
    write_run(tmp_path, "beauty", "elcrec", "ELCRec", 1, 0.5)
    write_run(tmp_path, "beauty", "elcrec", "B+ICL", 2, 0.3)
    (tmp_path / "beauty" / "sasrec" / "default" / "seed1").mkdir(parents=True)  # started, not finished
    rows = records.run_records(tmp_path)
    assert list(rows.columns) == records.RUN_COLUMNS and len(rows) == 2
    row = rows.set_index("variant").loc["B+ICL"]
    assert (row["dataset"], row["model"], row["seed"], row["cell"]) == ("beauty", "elcrec", 2, "beauty--elcrec--B_ICL")
    assert row["settings_hash"] == records.settings_hash({"masking": "zero", "alpha": 10, "clusters": 256})
    assert row["test_HR@5"] == pytest.approx(0.3, abs=0.05) and row["data_sha256"] == "ab" * 32


def test_a_broken_metrics_file_is_named(tmp_path):
    run = write_run(tmp_path, "beauty", "elcrec", "ELCRec", 1, 0.5)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(ElcrecError, match=r"metrics\.json: not a run's metrics\.json"):
        records.run_records(tmp_path)


def test_runs_of_another_sequence_file_than_the_dataset_s_now_are_named_with_the_reason(tmp_path):
    write_run(tmp_path / "runs", "beauty", "elcrec", "ELCRec", 1, 0.5)
    write_run(tmp_path / "runs", "beauty", "sasrec", "default", 1, 0.5, data="cd" * 32)
    digests = records.current_digests(write_stats(tmp_path / "sequences"))
    assert digests["beauty"] == "ab" * 32 and "mind-small" not in digests  # a stats file without a digest
    foreign = records.foreign_runs(records.run_records(tmp_path / "runs"), digests)
    assert foreign["model"].tolist() == ["sasrec"] and list(foreign.columns) == records.FOREIGN_COLUMNS
    assert foreign["reason"].iloc[0] == (
        "trained on another sequence file than the dataset's now (sha256 cdcdcdcdcdcd, now abababababab)"
    )
    assert records.foreign_runs(records.run_records(tmp_path / "none"), digests).empty

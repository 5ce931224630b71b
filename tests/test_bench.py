from conftest import FIXTURES

from elcrec.bench import benchmark
from elcrec.settings import model_defaults


def test_benchmark_prints_and_returns_epoch_times(capsys):
    settings = model_defaults("elcrec") | {"clusters": 4, "layers": 1, "device": "cpu", "threads": 1}
    summary = benchmark(str(FIXTURES / "benchmark" / "Beauty.txt"), "elcrec", settings, 1, epochs=2, profile=True)
    assert summary["epoch_seconds_with_validation"] > summary["train_seconds_per_epoch"] > 0
    printed = capsys.readouterr().out
    assert "epoch 1: train" in printed and "s/epoch with validation" in printed and "aten::" in printed
    assert "GFLOP per step" in printed and "dense matmul rate" in printed


def test_step_flops_counts_the_backbone_matmuls():
    import torch

    from elcrec.bench import step_flops
    from elcrec.data.batches import TrainingData, training_batches
    from elcrec.data.sequences import SequenceData
    from elcrec.models.registry import build

    split = SequenceData.load(FIXTURES / "benchmark" / "Beauty.txt").split(max_len=10)
    settings = model_defaults("sasrec") | {"layers": 1, "hidden_size": 8, "inner_size": 16, "max_len": 10}
    torch.manual_seed(0)
    model = build("sasrec", split.vocab_size, settings, split.n_users)
    batch = next(training_batches(TrainingData.of(split), 4, torch.Generator(), False))
    tokens = batch["input"].numel()
    # lower bound: the six dense layers of one block (q, k, v, out: 8x8; ffn 8x16, 16x8), forward and backward
    dense = 3 * 2 * tokens * (4 * 8 * 8 + 2 * 8 * 16)
    assert dense <= step_flops(model, batch) <= 3 * dense


def test_jobs_at_once_each_run_in_their_own_process_and_report(capsys):
    from elcrec.bench import benchmark_shared

    tiny = {"hidden_size": 8, "inner_size": 16, "layers": 1, "max_len": 10, "device": "cpu", "threads": 1}
    summaries = benchmark_shared(str(FIXTURES / "benchmark" / "Beauty.txt"), "sasrec", tiny, 1, epochs=1, jobs=2)
    assert len(summaries) == 2 and all(summary["train_seconds_per_epoch"] > 0 for summary in summaries)
    printed = capsys.readouterr().out
    assert "job 1:" in printed and "2 jobs at once" in printed and "epochs per hour together" in printed


def test_a_failing_job_s_message_names_it():
    import pytest

    from elcrec import ElcrecError
    from elcrec.bench import benchmark_shared

    with pytest.raises(ElcrecError, match="job 0 failed"):
        benchmark_shared(str(FIXTURES / "missing.txt"), "sasrec", {"device": "cpu"}, 1, epochs=1, jobs=2)


def test_steps_are_timed_from_initialisation_through_the_trainer_s_step(capsys):
    import pytest

    from elcrec import ElcrecError
    from elcrec.bench import benchmark_steps
    from elcrec.data.sequences import SequenceData

    sequences = FIXTURES / "benchmark" / "Beauty.txt"
    batches = -(-SequenceData.load(sequences).split().n_users // 16)
    tiny = model_defaults("sasrec") | {"layers": 1, "max_len": 10, "batch_size": 16, "device": "cpu", "threads": 1}
    summary = benchmark_steps(str(sequences), "sasrec", tiny, 1, steps=2)
    assert summary["steps"] == 2 and summary["seconds_per_step"] > 0
    assert "2 steps from initialisation (after 1 untimed)" in capsys.readouterr().out
    assert benchmark_steps(str(sequences), "sasrec", tiny, 1, steps=10**6)["steps"] == batches - 1  # the epoch's rest
    with pytest.raises(ElcrecError, match="single batch"):
        benchmark_steps(str(sequences), "sasrec", tiny | {"batch_size": 10**6}, 1, steps=3)
    with pytest.raises(ElcrecError, match="at least 1"):
        benchmark_steps(str(sequences), "sasrec", tiny, 1, steps=0)
    dssrec = model_defaults("dssrec") | {"layers": 1, "max_len": 10, "pretrain_batch_size": 16, "device": "cpu"}
    summary = benchmark_steps(str(sequences), "dssrec", dssrec | {"threads": 1}, 1, steps=2, pretraining=True)
    assert summary["steps"] == 2 and "2 pre-training steps from initialisation" in capsys.readouterr().out

"""gpu_estimate.py: the counters (views are no kernels), the step model by hand, and the grid's sum
(runs sharing a step's work counted once, datasets without a sequence file named, not guessed)."""

import shutil

import pytest
import torch
from conftest import FIXTURES
from model_helpers import settings_for

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.gpu_estimate import ASSUMPTIONS, Work, counted, epoch_steps, estimate, summary, training_work


def test_the_operator_counter_leaves_out_views():
    x = torch.ones(4, 6)
    work = counted(lambda: (x.view(6, 4) + 1).t().unsqueeze(0).sum())
    assert work.operators == 2  # add, sum; view, t and unsqueeze launch nothing
    matmul = counted(lambda: torch.ones(3, 5) @ torch.ones(5, 7))
    assert matmul.flops == 2 * 3 * 5 * 7


def test_a_step_is_bound_by_launches_or_by_the_device_by_hand():
    launch, kernel, rate = (ASSUMPTIONS[key] for key in ("launch_seconds", "kernel_seconds", "flops_per_second"))
    heavy = Work(operators=100, flops=2e12)
    assert heavy.seconds() == pytest.approx(100 * kernel + 2e12 / rate)  # device-bound
    light = Work(operators=1000, flops=0.0)
    assert light.seconds() == pytest.approx(1000 * launch)  # launch-bound alone
    assert light.seconds(jobs=4) == pytest.approx(max(1000 * launch / 4, 1000 * kernel))  # launches overlap
    assert (heavy + light).operators == 1100


def test_training_work_counts_a_sasrec_step_evaluation_and_no_hook():
    split = SequenceData.load(FIXTURES / "benchmark" / "Beauty.txt").split(max_len=10)
    settings = settings_for("sasrec", max_len=10, batch_size=8, eval_batch_size=8)
    work = training_work(split, "sasrec", settings)
    tokens = 8 * 10
    dense_forward = 2 * tokens * (4 * 8 * 8 + 2 * 8 * 16)  # one block's six dense layers
    assert work["step"].flops >= 3 * dense_forward and work["step"].operators > 50
    assert 0 < work["eval"].operators < work["step"].operators
    assert work["eval"].flops >= 2 * 8 * 8 * split.vocab_size  # the scores of 8 users over the vocabulary
    assert work["hook"].operators == 0  # SASRec has no epoch hook


def test_an_epoch_has_the_steps_of_the_model_s_batch_unit():
    split = SequenceData.load(FIXTURES / "benchmark" / "Beauty.txt").split(max_len=10)
    assert epoch_steps(split, "sasrec", settings_for("sasrec", batch_size=8)) == -(-split.n_users // 8)
    prefixes = int((split.train_input > 0).sum())  # DCRec's unit: every position of the cut input
    assert epoch_steps(split, "dcrec", settings_for("dcrec", batch_size=64, max_len=10)) == -(-prefixes // 64)
    windows = int(sum(max(length - 5, 0) for length in split.train_sequences.lengths))  # GRU4Rec: 5 items before
    settings = settings_for("gru4rec", batch_size=16, max_len=10)
    assert epoch_steps(split, "gru4rec", settings) == -(-windows // 16) > 0
    assert training_work(split, "gru4rec", settings)["step"].operators > 0  # its batch has its negatives
    bprmf = settings_for("bprmf", batch_size=16)  # its official TF1 RMSProp on sparse gradients (Adam refuses them)
    assert bprmf["optimizer"] == "rmsprop-tf1" and training_work(split, "bprmf", bprmf)["step"].operators > 0
    kang205 = settings_for("sasrec", architecture="kang205", batch_unit="random-users", batch_size=8, max_len=10)
    assert epoch_steps(split, "sasrec", kang205) == split.n_users // 8  # users drawn with replacement


def test_the_grid_sum_counts_shared_work_once_and_names_missing_datasets(tmp_path):
    shutil.copy(FIXTURES / "benchmark" / "Beauty.txt", tmp_path / "tiny.txt")
    tiny = {"hidden_size": 8, "inner_size": 16, "heads": 2, "layers": 1, "max_len": 10, "batch_size": 8}
    config = {
        "datasets": {"tiny": {}, "absent": {}},
        "seeds": [1, 2],
        "experiments": {
            "table1": {"datasets": ["tiny", "absent"], "runs": [["sasrec", "default"], ["sasrec", "cost"]]}
        },
        "models": {"sasrec": {"settings": tiny, "variants": {"default": {"epochs": 5}, "cost": {"epochs": 9}}}},
    }
    said = []
    table = estimate(config, tmp_path, jobs_per_gpu=2, say=said.append)
    assert sorted(table["variant"]) == ["cost", "default"] and set(table["dataset"]) == {"tiny"}
    assert sum(line.startswith("counting") for line in said) == 1  # `cost` differs only in epochs
    assert any("absent" in line and "not in the estimate" in line for line in said)
    for row in table.itertuples():
        assert row.runs == 2
        assert row.gpu_hours_1_job == pytest.approx(2 * row.epochs * row.epoch_seconds_1_job / 3600)
        assert row.epoch_seconds_shared <= row.epoch_seconds_1_job
    assert "ESTIMATE" in summary(table, 2) and "4 runs" in summary(table, 2)
    with pytest.raises(ElcrecError, match="no sequence file"):
        estimate(config, tmp_path / "empty", jobs_per_gpu=2, say=said.append)

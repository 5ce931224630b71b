from conftest import FIXTURES

from elcrec.bench import benchmark
from elcrec.settings import model_defaults


def test_benchmark_prints_and_returns_epoch_times(capsys):
    settings = model_defaults("elcrec") | {"clusters": 4, "layers": 1, "device": "cpu", "threads": 1}
    summary = benchmark(str(FIXTURES / "benchmark" / "Beauty.txt"), "elcrec", settings, 1, epochs=2, profile=True)
    assert summary["epoch_seconds_with_validation"] > summary["train_seconds_per_epoch"] > 0
    printed = capsys.readouterr().out
    assert "epoch 1: train" in printed and "s/epoch with validation" in printed and "aten::" in printed

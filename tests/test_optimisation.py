"""optimisation.py: the epoch of steps shared by training and pre-training: losses averaged over the
steps, the first non-finite step named at the epoch's end, the state a resume needs, and the
amp warning on a CPU without native bfloat16."""

import warnings

import pytest
import torch

import elcrec.optimisation as optimisation
from elcrec.optimisation import NonFiniteLoss, Optimisation


def make(amp: bool = False) -> tuple[torch.nn.Linear, Optimisation]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, Optimisation(model, torch.device("cpu"), 5, lr=0.1, betas=(0.9, 0.999), weight_decay=0.0, amp=amp)


def squared(model):
    return lambda batch: {"total": (model(batch["x"]) ** 2).mean()}


def test_an_epoch_averages_the_losses_and_takes_a_step_per_batch():
    model, steps = make()
    batches = [{"x": torch.ones(2, 3) * value} for value in (1.0, 2.0)]
    expected = []
    with torch.no_grad():
        weight, bias = model.weight.clone(), model.bias.clone()
    expected.append(float(((torch.ones(2, 3) @ weight.T + bias) ** 2).mean()))
    means = steps.epoch(squared(model), batches, "linear", 0)
    assert means["loss_total"] > 0 and "memory_mb" in means
    assert means["loss_total"] != pytest.approx(expected[0])  # two steps, the second after an update
    assert not torch.equal(model.weight.detach(), weight)


def test_a_non_finite_loss_is_raised_at_the_epoch_s_end_with_its_first_step():
    model, steps = make()
    seen = []

    def loss(batch):
        seen.append(batch["step"])
        value = (model(batch["x"]) ** 2).mean()
        return {"total": value * batch["scale"]}

    batches = [
        {"x": torch.ones(1, 3), "scale": torch.tensor(scale), "step": torch.tensor(i)}
        for i, scale in enumerate([1.0, float("nan"), float("inf"), 1.0])
    ]
    with pytest.raises(NonFiniteLoss, match="epoch 4, step 1: total = nan") as caught:
        steps.epoch(loss, batches, "linear", 4)
    assert len(seen) == 4 and caught.value.epoch == 4 and caught.value.step == 1


def test_state_round_trip_continues_the_same_random_stream():
    model, steps = make()
    steps.epoch(squared(model), [{"x": torch.randn(2, 3)}], "linear", 0)
    saved = steps.state()
    draws = torch.rand(3, generator=steps.generator), torch.rand(3)
    other_model, other = make()
    other.load_state(saved)
    assert torch.equal(torch.rand(3, generator=other.generator), draws[0])
    assert torch.equal(torch.rand(3), draws[1])
    assert other.optimizer.state_dict()["state"].keys() == steps.optimizer.state_dict()["state"].keys()


def test_cpu_amp_without_native_bfloat16_warns(monkeypatch):
    monkeypatch.setattr(optimisation, "native_bfloat16", lambda: False)
    with pytest.warns(RuntimeWarning, match="without native bfloat16"):
        make(amp=True)
    monkeypatch.setattr(optimisation, "native_bfloat16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(amp=True)

"""optimisation.py: the epoch of steps shared by training and pre-training: losses averaged over the
steps, the first non-finite step named at the epoch's end, the state a resume needs, the
amp warning on a CPU without native bfloat16, and TensorFlow 1's RMSProp by hand."""

import warnings

import pytest
import torch

import elcrec.optimisation as optimisation
from elcrec import ElcrecError
from elcrec.optimisation import NonFiniteLoss, Optimisation, TF1RMSProp


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


# ----- compile: true -----
def sasrec_steps(compile: bool, steps: int = 3) -> tuple[list[dict], dict]:
    """`steps` epochs of one batch of a tiny SASRec; the epochs' mean losses and the first step's gradients."""
    from model_helpers import settings_for, tiny_sequences

    from elcrec.data.batches import TrainingData, training_batches
    from elcrec.models.registry import build

    split = tiny_sequences(users=24).split(max_len=10)
    settings = settings_for("sasrec", hidden_size=8, inner_size=16, max_len=10)  # dropout 0.5 on
    torch.manual_seed(0)
    model = build("sasrec", split.vocab_size, settings, split.n_users)
    device = torch.device("cpu")
    steps_run = Optimisation(
        model, device, 5, lr=0.01, betas=(0.9, 0.999), weight_decay=0.0, amp=False, compile=compile
    )
    batches = list(training_batches(TrainingData.of(split), 8, torch.Generator().manual_seed(3)))
    gradients = {}
    means = []
    for epoch in range(steps):
        means.append(steps_run.epoch(model.loss, batches[:1], "sasrec", epoch))
        if epoch == 0:
            gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    return means, gradients


def test_compile_equals_eager_within_float_tolerance_on_a_tiny_model():
    with warnings.catch_warnings():
        # the fallback's warning fails the test: the numbers below must be the compiled step's
        warnings.filterwarnings("error", message=".*torch.compile failed", category=RuntimeWarning)
        compiled_means, compiled_gradients = sasrec_steps(compile=True)
    eager_means, eager_gradients = sasrec_steps(compile=False)
    assert compiled_means[0]["loss_total"] == pytest.approx(eager_means[0]["loss_total"], rel=1e-6)
    for compiled, eager in zip(compiled_means, eager_means, strict=True):  # after Adam steps: less close
        assert compiled["loss_total"] == pytest.approx(eager["loss_total"], rel=1e-4)
    assert eager_means[0]["loss_total"] != pytest.approx(eager_means[-1]["loss_total"], rel=1e-3)  # it learnt
    # gradients, not weights: Adam turns a 1e-10 gradient (exactly 0 eagerly) into a whole lr-sized step
    for name, gradient in eager_gradients.items():
        torch.testing.assert_close(compiled_gradients[name], gradient, rtol=1e-4, atol=1e-6)


def test_compile_falls_back_to_eager_with_a_warning_when_torch_compile_fails(monkeypatch):
    def unavailable(*args, **kwargs):
        raise RuntimeError("torch.compile is not supported on this platform")

    monkeypatch.setattr(torch, "compile", unavailable)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*not supported.*training eagerly"):
        means, gradients = sasrec_steps(compile=True)
    eager_means, eager_gradients = sasrec_steps(compile=False)
    assert [row["loss_total"] for row in means] == [row["loss_total"] for row in eager_means]
    assert all(torch.equal(gradients[name], gradient) for name, gradient in eager_gradients.items())


def test_compile_falls_back_when_the_compiler_fails_at_the_first_step(monkeypatch):
    def failing_compiler(function, **kwargs):
        def compiled(batch):
            raise torch._dynamo.exc.InternalTorchDynamoError("no C++ compiler found")

        return compiled

    monkeypatch.setattr(torch, "compile", failing_compiler)
    with pytest.warns(RuntimeWarning, match="InternalTorchDynamoError: no C.. compiler"):
        means, _ = sasrec_steps(compile=True)
    eager_means, _ = sasrec_steps(compile=False)
    assert [row["loss_total"] for row in means] == [row["loss_total"] for row in eager_means]


def test_tf1_rmsprop_by_hand_dense_and_sparse_rows():
    # dense: mean square from 1, ms <- ms + (g^2 - ms)(1 - 0.9); w <- w - lr g / sqrt(ms + 1e-10)
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = TF1RMSProp([weight], lr=0.1)
    for _ in range(2):
        weight.grad = torch.tensor([0.5, 3.0])
        optimizer.step()
    ms1 = 1 + (torch.tensor([0.25, 9.0]) - 1) * 0.1
    after1 = torch.tensor([1.0, -2.0]) - 0.1 * torch.tensor([0.5, 3.0]) / (ms1 + 1e-10).sqrt()
    ms2 = ms1 + (torch.tensor([0.25, 9.0]) - ms1) * 0.1
    after2 = after1 - 0.1 * torch.tensor([0.5, 3.0]) / (ms2 + 1e-10).sqrt()
    assert torch.allclose(weight.detach(), after2) and torch.allclose(optimizer.state[weight]["mean_square"], ms2)
    # sparse (an embedding's lookup): row 2 twice (its gradients summed), row 0 never: row 0 keeps ms 1
    table = torch.nn.Embedding(3, 1, sparse=True)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[1.0], [2.0], [3.0]]))
    optimizer = TF1RMSProp(table.parameters(), lr=0.1)
    table(torch.tensor([2, 1, 2])).sum().backward()
    optimizer.step()
    ms = torch.tensor([[1.0], [1 + (1 - 1) * 0.1], [1 + (4 - 1) * 0.1]])
    assert torch.allclose(optimizer.state[table.weight]["mean_square"], ms)
    expected = torch.tensor([[1.0], [2 - 0.1 * 1 / ms[1, 0].sqrt()], [3 - 0.1 * 2 / ms[2, 0].sqrt()]])
    assert torch.allclose(table.weight.detach(), expected)


def test_optimisation_takes_rmsprop_tf1_by_name_and_refuses_weight_decay_with_it():
    model = torch.nn.Linear(3, 1)
    chosen = Optimisation(model, torch.device("cpu"), 5, 0.1, (0.9, 0.999), 0.0, False, optimizer="rmsprop-tf1")
    assert isinstance(chosen.optimizer, TF1RMSProp)
    with pytest.raises(ElcrecError, match="no weight decay"):
        Optimisation(model, torch.device("cpu"), 5, 0.1, (0.9, 0.999), 0.01, False, optimizer="rmsprop-tf1")
    with pytest.raises(ElcrecError, match="optimizer must be one of"):
        Optimisation(model, torch.device("cpu"), 5, 0.1, (0.9, 0.999), 0.0, False, optimizer="sgd")


def gradients_at_the_step(clip: float) -> torch.Tensor:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    steps = Optimisation(model, torch.device("cpu"), 5, 0.1, (0.9, 0.999), 0.0, False, clip_norm=clip)
    seen, original = [], steps.optimizer.step

    def step(*args):
        seen.append(torch.cat([parameter.grad.flatten() for parameter in model.parameters()]).clone())
        return original(*args)

    steps.optimizer.step = step
    steps.epoch(lambda batch: {"total": (model(batch["x"]) ** 2).sum()}, [{"x": torch.ones(4, 3)}], "linear", 0)
    return seen[0]


def test_clip_norm_scales_every_gradient_to_the_global_norm_as_tf_clip_by_global_norm():
    """Read at the optimiser's step (Adam's first step would not show a scale)."""
    unclipped = gradients_at_the_step(0.0)
    assert float(unclipped.norm()) > 1.0
    assert torch.allclose(gradients_at_the_step(1.0), unclipped / unclipped.norm(), atol=1e-6)  # clip / norm
    assert torch.equal(gradients_at_the_step(1e6), unclipped)  # under the clip: untouched

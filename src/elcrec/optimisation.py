"""An epoch of optimisation steps, shared by training (training.py) and pre-training (pretraining.py).

The optimiser (Adam, or TensorFlow 1's RMSProp for BPR-MF's official loop), mixed precision, the
batch generator and the random states belong to one `Optimisation`; `epoch(loss, batches)` runs
the steps of one epoch. Loss sums and the finiteness check stay on the device and are read once,
at the epoch's end: no host-device synchronisation per step (on a GPU a step would otherwise wait
for the last). `state()` / `load_state()` carry
everything a resumed run needs to continue exactly (optimiser, scaler, generator, torch's RNGs).

`compile` (a named option, off by default) runs the loss of each step through `torch.compile`
(autograd compiles its backward with it; on CUDA with CUDA graphs where they apply, as the
`reduce-overhead` mode) with torch's eager random operators, so dropout draws the same masks as
an eager run and the numbers agree within float tolerance. Where compilation fails (no C++
compiler, an unsupported platform or operator), a warning says why and the step runs eagerly,
with the same numbers as without the option.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from elcrec import ElcrecError
from elcrec.runinfo import current_memory_bytes, native_bfloat16

Batch = dict[str, torch.Tensor]
Loss = Callable[[Batch], dict[str, torch.Tensor]]
OPTIMIZERS = ("adam", "rmsprop-tf1")


class TF1RMSProp(torch.optim.Optimizer):
    """tf.train.RMSPropOptimizer with its defaults (decay 0.9, momentum 0, epsilon 1e-10), as TensorFlow 1
    applies it: the mean square starts at 1 (the `rms` slot's ones initialiser), epsilon inside the root,
    and a sparse gradient (an nn.Embedding(sparse=True) lookup) updates only the rows it holds, duplicates
    summed (TF's sparse apply after deduplication); other rows keep their mean square unchanged."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, decay: float = 0.9, epsilon: float = 1e-10):
        super().__init__(params, {"lr": lr, "decay": decay, "epsilon": epsilon})

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            lr, keep, epsilon = group["lr"], group["decay"], group["epsilon"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state[parameter]
                if not state:
                    state["mean_square"] = torch.ones_like(parameter)
                mean_square, grad = state["mean_square"], parameter.grad
                if grad.is_sparse:  # training_ops.cc SparseApplyRMSProp: the gradient's rows only
                    grad = grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                    square = mean_square[rows]
                    square += (values * values - square) * (1 - keep)
                    mean_square[rows] = square
                    parameter.index_add_(0, rows, -(values * lr) / (square + epsilon).sqrt())
                else:  # ApplyRMSProp
                    mean_square += (grad * grad - mean_square) * (1 - keep)
                    parameter -= (grad * lr) / (mean_square + epsilon).sqrt()


class NonFiniteLoss(ElcrecError):
    """A loss that is NaN or infinite, with where it happened (epoch from 0, step within the epoch)."""

    def __init__(self, message: str, epoch: int = -1, step: int = -1, losses: dict[str, float] | None = None):
        super().__init__(message)
        self.epoch, self.step, self.losses = epoch, step, losses or {}


class DivergenceWatch:
    """The first step of an epoch whose losses were not all finite, and those losses, kept on the
    device (no per-step read); `raise_if_diverged` reads them once, at the epoch's end."""

    def __init__(self, device: torch.device) -> None:
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.names: list[str] = []
        self.values: torch.Tensor | None = None

    def observe(self, losses: dict[str, torch.Tensor], step: int) -> None:
        values = torch.stack([value.detach().float() for value in losses.values()])
        if self.values is None:
            self.names, self.values = list(losses), torch.zeros_like(values)
        first = (self.first_step < 0) & ~torch.isfinite(values).all()
        self.first_step = torch.where(first, torch.full_like(self.first_step, step), self.first_step)
        self.values = torch.where(first, values, self.values)

    def raise_if_diverged(self, model_name: str, epoch: int) -> None:
        step = int(self.first_step)
        if step < 0:
            return
        values = dict(zip(self.names, self.values.tolist(), strict=True))
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        raise NonFiniteLoss(
            f"{model_name}: non-finite loss at epoch {epoch}, step {step}: "
            + ", ".join(f"{name} = {values[name]}" for name in bad),
            epoch=epoch,
            step=step,
            losses=values,
        )


class CompiledLoss:
    """A loss function through `torch.compile`, or the function itself, with a warning naming the
    reason, where compilation fails (when it is set up or at the first call of a shape)."""

    def __init__(self, loss: Loss, device: torch.device, name: str) -> None:
        self.eager, self.name = loss, name
        # fallback_random: the eager random operators, so dropout draws what an eager run draws
        options = {"fallback_random": True} | ({"triton.cudagraphs": True} if device.type == "cuda" else {})
        try:
            self.function: Loss = torch.compile(loss, dynamic=False, options=options)
        except Exception as error:  # e.g. torch.compile unsupported on this Python or platform
            self.fall_back(error)

    @property
    def compiled(self) -> bool:
        return self.function is not self.eager

    def fall_back(self, error: Exception) -> None:
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        warnings.warn(
            f"{self.name}: compile: true, but torch.compile failed ({type(error).__name__}: {first_line}); "
            "training eagerly instead",
            RuntimeWarning,
            stacklevel=3,
        )
        self.function = self.eager

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        if not self.compiled:
            return self.eager(batch)
        try:
            return self.function(batch)
        except torch._dynamo.exc.TorchDynamoException as error:  # the compiler's failure, inductor's included
            self.fall_back(error)
            return self.eager(batch)


class Optimisation:
    """Adam (or `optimizer` rmsprop-tf1: TF1RMSProp) over the model's parameters (none: `pop`, fitted
    in a hook, takes no steps), mixed precision when `amp`, and the run's batch generator, on
    `batch_device` (training builds its batches on the model's device, data/batches.py; the
    pre-training batch builders of the models run on the host)."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        seed: int,
        lr: float,
        betas: Iterable[float],
        weight_decay: float,
        amp: bool,
        batch_device: torch.device | str = "cpu",
        compile: bool = False,
        optimizer: str = "adam",
        clip_norm: float = 0.0,
    ) -> None:
        self.model, self.device, self.amp, self.compile = model, device, amp, compile
        self.clip_norm = clip_norm
        self.compiled_losses: dict[Loss, CompiledLoss] = {}
        self.generator = torch.Generator(device=batch_device).manual_seed(seed)
        parameters = self.parameters = list(model.parameters())
        self.optimizer = None
        if optimizer not in OPTIMIZERS:
            raise ElcrecError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
        if optimizer == "rmsprop-tf1" and weight_decay:
            raise ElcrecError("optimizer rmsprop-tf1 has no weight decay (TensorFlow's has none): set weight_decay 0")
        if parameters and optimizer == "rmsprop-tf1":
            self.optimizer = TF1RMSProp(parameters, lr=lr)
        elif parameters:
            self.optimizer = torch.optim.Adam(parameters, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
        self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        if amp and device.type == "cpu" and native_bfloat16() is False:
            warnings.warn(
                "amp: true on a CPU without native bfloat16 (no AVX512-BF16/AMX): torch emulates it, "
                "which is slower than float32 here; set amp: false",
                RuntimeWarning,
                stacklevel=3,
            )
        self.scaler = torch.amp.GradScaler(enabled=amp and device.type == "cuda")

    def epoch(self, loss: Loss, batches: Iterable[Batch], name: str, epoch: int) -> dict[str, float]:
        """One step per batch; the mean of every named loss over the steps (`loss_<name>`) and the
        mean memory in use during a step (`memory_mb`). A non-finite loss raises NonFiniteLoss at the
        epoch's end, naming its first step."""
        if self.compile:
            if loss not in self.compiled_losses:  # compiled once per run, not per epoch
                self.compiled_losses[loss] = CompiledLoss(loss, self.device, name)
            loss = self.compiled_losses[loss]
        sums: dict[str, torch.Tensor] = {}
        watch = DivergenceWatch(self.device)
        steps, memory = 0, 0
        for batch in batches:
            batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                losses = loss(batch)
            watch.observe(losses, steps)
            if self.optimizer is not None:
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(losses["total"]).backward()
                if self.clip_norm:  # tf.clip_by_global_norm: every gradient by clip / max(norm, clip)
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.parameters, self.clip_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
            for key, value in losses.items():
                total = sums.get(key)
                value = value.detach().to(torch.float64)
                sums[key] = value if total is None else total + value
            memory += current_memory_bytes(self.device)
            steps += 1
        watch.raise_if_diverged(name, epoch)
        means = {f"loss_{key}": float(total) / max(steps, 1) for key, total in sums.items()}
        return means | {"memory_mb": memory / max(steps, 1) / 2**20}

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups if self.optimizer is not None else []:
            group["lr"] = lr

    @classmethod
    def of(
        cls,
        model: torch.nn.Module,
        device: torch.device,
        seed: int,
        settings: dict,
        lr: float,
        batch_device: torch.device | str = "cpu",
    ) -> Optimisation:
        """From a run's resolved settings (the optimiser: a model's `optimizer`, else Adam; Adam's betas and
        weight decay, amp, compile, a model's `clip_norm`)."""
        return cls(
            model,
            device,
            seed,
            lr=lr,
            betas=settings["adam_betas"],
            weight_decay=settings["weight_decay"],
            amp=settings["amp"],
            batch_device=batch_device,
            compile=settings["compile"],
            optimizer=settings.get("optimizer", "adam"),
            clip_norm=settings.get("clip_norm", 0.0),
        )

    def state(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state(self, saved: dict) -> None:
        if self.optimizer is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        self.generator.set_state(saved["generator"].cpu())
        torch.set_rng_state(saved["torch_rng"].cpu())
        if saved["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([state.cpu() for state in saved["cuda_rng"]])


def load_checkpoint(path: Path, device: torch.device, expected: dict, what: str) -> dict:
    """The saved state, refused (naming the keys) when it is not of this `what` ("run", "pre-training"):
    every key of `expected` must equal the saved one; `settings` are compared without `threads`,
    which may differ between attempts (e.g. fewer cores on the retry)."""
    saved = torch.load(path, map_location=device, weights_only=False)

    def comparable(key: str, value):
        if key == "settings" and isinstance(value, dict):
            return {name: setting for name, setting in value.items() if name != "threads"}
        return value

    differing = [key for key, value in expected.items() if comparable(key, saved.get(key)) != comparable(key, value)]
    if differing:
        raise ElcrecError(
            f"{path}: checkpoint of a different {what} ({', '.join(differing)} differ); "
            f"delete it to start this {what} afresh"
        )
    return saved

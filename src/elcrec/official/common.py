"""What every check against the official code shares (docs/OFFICIAL.md): the tolerances, the fixtures
under tests/data/official, and the comparison of losses, gradients and scores.

A fixture is `<name>.npz` (the official code's numbers and the inputs that made them, under the
official names) and `<name>.json` (repository, commit, command, torch version, seeds, the official
file:line of each loss). Checks whose weights are in the fixture (a seeded initialisation of the
official model, the module's `CHECK["weights"]` None) store them as `weight/<official name>`; every check
stores its losses and gradients (`grad/<official name>`, an embedding table's as its nonzero rows
`grad_rows/<name>`) and, where scores are compared, `scores` (evaluation mode).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.official import FIXTURES, GRADIENT_FLOOR, GRADIENT_SHARE, LOSS_FLOOR, LOSS_SHARE, SCORE_FLOOR, SCORE_SHARE


def load_fixture(name: str, folder: Path = FIXTURES) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(folder) / name
    if not path.with_suffix(".npz").is_file():
        raise ElcrecError(f"{path}.npz: no such fixture of the official code")
    with np.load(path.with_suffix(".npz")) as arrays:
        fixture = {key: arrays[key] for key in arrays.files}
    return fixture, json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def as_is(name: str, tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def official_state(
    fixture: dict[str, np.ndarray], rename: Callable[[str], str], convert=as_is
) -> dict[str, torch.Tensor]:
    """The fixture's official weights (`weight/<name>`) under our names, for a strict load_state_dict;
    `convert(official name, tensor)` puts one in our layout (a TF kernel transposed)."""
    names = [key.removeprefix("weight/") for key in fixture if key.startswith("weight/")]
    return {rename(name): convert(name, torch.from_numpy(fixture[f"weight/{name}"])) for name in names}


def official_gradients(
    fixture: dict[str, np.ndarray], rename, convert=as_is
) -> dict[str, tuple[torch.Tensor | None, torch.Tensor]]:
    """Every parameter's official gradient under our name (`rename`: official name -> ours; `convert`
    as official_state's): (rows, values) for an embedding table stored by its nonzero rows, (None,
    gradient) otherwise."""
    gradients = {}
    for key in (key for key in fixture if key.startswith("grad/")):
        name = key.removeprefix("grad/")
        rows = fixture.get(f"grad_rows/{name}")
        values = convert(name, torch.from_numpy(fixture[key]))
        gradients[rename(name)] = (None if rows is None else torch.from_numpy(rows), values)
    return gradients


def compare_scores(ours: torch.Tensor, official: np.ndarray) -> dict:
    """The largest score difference, as a share of the largest official score."""
    theirs = torch.from_numpy(official).to(ours.dtype)
    if ours.shape != theirs.shape:
        raise ElcrecError(f"scores: ours are {tuple(ours.shape)}, the official code's {tuple(theirs.shape)}")
    difference, largest = float((ours.detach() - theirs).abs().max()), float(theirs.abs().max())
    return {
        "difference": difference,
        "largest": largest,
        "share": difference / max(largest, 1e-30),
        "within": difference <= SCORE_SHARE * largest + SCORE_FLOOR,
    }


def compare(
    losses: dict[str, torch.Tensor],
    official_losses: dict[str, float],
    model: torch.nn.Module,
    gradients,
    scores: tuple[torch.Tensor, np.ndarray] | None = None,
) -> dict:
    """Each loss beside the official one, then (after our total's backward) every gradient: the
    largest difference as a share of its tensor's largest official entry; with `scores` (ours, the
    official ones) the largest score difference too."""
    compared = {}
    for name, official in official_losses.items():
        ours = losses[name].item()
        compared[name] = {"ours": ours, "official": official, "share": abs(ours - official) / max(abs(official), 1e-30)}
    losses["total"].backward()
    # an embedding's sparse gradient (BPR-MF's tables for TF1's RMSProp) compared as the dense one
    mine = {
        name: parameter.grad.to_dense() if parameter.grad is not None and parameter.grad.is_sparse else parameter.grad
        for name, parameter in model.named_parameters()
    }
    if set(gradients) != set(mine):
        raise ElcrecError(
            f"gradients: the official and our parameter names differ ({sorted(set(gradients) ^ set(mine))[:5]})"
        )
    differences = {}
    for name, (rows, theirs) in gradients.items():
        grad = mine[name] if mine[name] is not None else torch.zeros_like(dict(model.named_parameters())[name])
        if rows is None:
            difference = float((grad - theirs).abs().max())
        else:  # the stored rows, and nothing elsewhere
            elsewhere = torch.ones(len(grad), dtype=torch.bool)
            elsewhere[rows] = False
            stray = float(grad[elsewhere].abs().max()) if elsewhere.any() else 0.0
            difference = max(float((grad[rows] - theirs).abs().max()), stray)
        differences[name] = {"difference": difference, "largest": float(theirs.abs().max())}
    within = all(
        abs(entry["ours"] - entry["official"]) <= LOSS_SHARE * abs(entry["official"]) + LOSS_FLOOR
        for entry in compared.values()
    ) and all(
        entry["difference"] <= GRADIENT_SHARE * entry["largest"] + GRADIENT_FLOOR for entry in differences.values()
    )
    # the largest share among gradients that are not 0 but for rounding (key biases: softmax ignores
    # a constant added to a row of logits); those pass by the floor
    sizeable = {name: entry for name, entry in differences.items() if entry["largest"] > 100 * GRADIENT_FLOOR}
    worst = max(sizeable.items(), key=lambda item: item[1]["difference"] / item[1]["largest"])
    result = {
        "losses": compared,
        "largest_loss_share": max(entry["share"] for entry in compared.values()),
        "largest_gradient": {"parameter": worst[0], **worst[1]},
        "gradients": len(differences),
        "within_tolerance": within,
    }
    if scores is not None:
        result["scores"] = compare_scores(*scores)
        result["largest_score_share"] = result["scores"]["share"]
        result["within_tolerance"] = within and result["scores"]["within"]
    return result

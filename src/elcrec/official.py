"""Checks against the official code (docs/OFFICIAL.md): our model given the weights and the batch a
fixture of the official code was made with, and every loss and gradient compared with the
fixture's. The fixtures (tests/data/official/) hold only the official code's numbers and inputs;
their maintainer commands (workflow/scripts/official/) run the official code from a checkout.

`OFFICIAL_CODE` is every Table 1 model's official code (the paper's Table 12, pinned where the
check is built); `CHECKS` the models with a fixture. `check` writes what rule `official_check`
gives the report: the largest differences, or why nothing was compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from elcrec import ElcrecError

if TYPE_CHECKING:  # torch is imported where a check runs: the analysis reads only the records (`table`)
    import torch

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "official"
# float32 rounding: a loss within 1e-5 of itself + 1e-6; a gradient within 1e-4 of its tensor's largest entry + 1e-6
LOSS_SHARE, LOSS_FLOOR, GRADIENT_SHARE, GRADIENT_FLOOR = 1e-5, 1e-6, 1e-4, 1e-6
OFFICIAL_CODE = {
    "bprmf": "xiangwang1223/neural_graph_collaborative_filtering (TensorFlow)",
    "gru4rec": "hidasib/GRU4Rec (Theano)",
    "caser": "graytowne/caser_pytorch",
    "sasrec": "kang205/SASRec (TensorFlow); as the ELCRec code base runs it: yueliu1999/ELCRec",
    "bert4rec": "FeiSun/BERT4Rec (TensorFlow)",
    "dssrec": "no official code (abis330/DSSRec, the re-implementation the paper cites)",
    "s3rec": "aHuiWang/CIKM2020-S3Rec @ 49a890dcb516c9ed3126564495234ea74d5cd566",
    "cl4srec": "HKUDS/SSLRec; inside the ELCRec code base: yueliu1999/ELCRec",
    "dcrec": "HKUDS/DCRec @ 23382332f79351b1340033946982b4dd93ae46ae",
    "maerec": "HKUDS/MAERec @ bd92f2c7776d52a83361ef5c4ca5dc6635ccec00",
    "iocrec": "LFM-bot/IOCRec @ a1b91db459920b4640dd14f1044684a3a5c162d5",
    "iclrec": "salesforce/ICLRec; as the ELCRec code base runs it: yueliu1999/ELCRec",
    "elcrec": "yueliu1999/ELCRec @ ad6e1c806c43df406f92e5671149ef28a705180f",
}
CHECKS = {
    "s3rec": {
        "fixture": "s3rec_pretrain_beauty",
        "weights": "S3Rec-Beauty-epochs-150.pt",
        "weights_sha256": "a196408d383719bccd1898b5f3f879bd2cdf6490ad9ee21ce0291cae97bd0508",
        "compared": "pre-training on the official Beauty weights: AAP, MIP, MAP, SP, the total; every gradient",
        "departures": "none switched off",
    },
    "elcrec": {
        "fixture": "elcrec_train_beauty",
        "weights": "ELCRec-Beauty-1.pt",
        "weights_sha256": "56ad0aba39269ba901deac55660edf35ce8e0bc7de599e47eca54bb4885d8af4",
        "compared": (
            "a training step on the released Beauty checkpoint (the paper's Beauty settings): next-item BCE, "
            "instance CL with the centre shift, cluster loss, intent CL, the total; every gradient, centres included"
        ),
        "departures": "none switched off",
    },
}
# our batch <- the official code's names
S3REC_BATCH = {
    "items": "pos_items",
    "masked_items": "masked_item_sequence",
    "negatives": "neg_items",
    "masked_segments": "masked_segment_sequence",
    "positive_segments": "pos_segment",
    "negative_segments": "neg_segment",
}
S3REC_LOSSES = {"aap": "aap_loss", "mip": "mip_loss", "map": "map_loss", "sp": "sp_loss", "total": "total"}
ELCREC_LOSSES = {
    "next_item": "loss/rec_loss",
    "instance_cl": "loss/cl_loss1_instance",
    "cluster": "loss/cluster_loss_weighted",
    "intent_cl": "loss/cl_loss3_intent",
    "total": "loss/joint_loss",
}
ELCREC_BEAUTY = {"layers": 1, "clusters": 256, "alpha": 10, "fusion": "shift"}  # config.yaml, the authors' script


def load_fixture(name: str, folder: Path = FIXTURES) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(folder) / name
    if not path.with_suffix(".npz").is_file():
        raise ElcrecError(f"{path}.npz: no such fixture of the official code")
    with np.load(path.with_suffix(".npz")) as arrays:
        fixture = {key: arrays[key] for key in arrays.files}
    return fixture, json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def official_gradients(fixture: dict[str, np.ndarray], rename) -> dict[str, tuple[torch.Tensor | None, torch.Tensor]]:
    """Every parameter's official gradient under our name (`rename`: official name -> ours): (rows,
    values) for an embedding table stored by its nonzero rows, (None, gradient) otherwise."""
    import torch

    gradients = {}
    for key in (key for key in fixture if key.startswith("grad/")):
        name = key.removeprefix("grad/")
        rows = fixture.get(f"grad_rows/{name}")
        gradients[rename(name)] = (None if rows is None else torch.from_numpy(rows), torch.from_numpy(fixture[key]))
    return gradients


def compare(
    losses: dict[str, torch.Tensor], official_losses: dict[str, float], model: torch.nn.Module, gradients
) -> dict:
    """Each loss beside the official one, then (after our total's backward) every gradient: the
    largest difference as a share of its tensor's largest official entry."""
    import torch

    compared = {}
    for name, official in official_losses.items():
        ours = losses[name].item()
        compared[name] = {"ours": ours, "official": official, "share": abs(ours - official) / max(abs(official), 1e-30)}
    losses["total"].backward()
    mine = {name: parameter.grad for name, parameter in model.named_parameters()}
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
    return {
        "losses": compared,
        "largest_loss_share": max(entry["share"] for entry in compared.values()),
        "largest_gradient": {"parameter": worst[0], **worst[1]},
        "gradients": len(differences),
        "within_tolerance": within,
    }


def s3rec_differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our S3-Rec (official weights loaded) in eval mode on the fixture's pre-training batch."""
    import torch

    from elcrec.models.reference import s3rec_name

    model.eval().zero_grad()
    batch = {ours: torch.from_numpy(fixture[theirs]) for ours, theirs in S3REC_BATCH.items()}
    official = {ours: float(fixture[theirs]) for ours, theirs in S3REC_LOSSES.items()}
    gradients = official_gradients(fixture, s3rec_name)
    return compare(model.pretraining_loss(batch), official, model, gradients)


def elcrec_differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our ELCRec (the released checkpoint loaded) in eval mode on the fixture's training batch: its
    inputs, targets, negatives and the two views (the official code encodes them for both losses)."""
    import torch

    from elcrec.models.reference import CENTRES_KEY, encoder_name

    model.eval().zero_grad()
    views = [torch.from_numpy(fixture[f"cl_batches/0/{view}"]) for view in (0, 1)]
    batch = {
        "users": torch.arange(len(fixture["input_ids"])),
        "input": torch.from_numpy(fixture["input_ids"]),
        "target": torch.from_numpy(fixture["target_pos"]),
        "negative": torch.from_numpy(fixture["target_neg"]),
        "views": torch.cat(views),
    }
    official = {ours: float(fixture[theirs]) for ours, theirs in ELCREC_LOSSES.items()}

    def rename(name: str) -> str:
        return "centres" if name == CENTRES_KEY else f"backbone.{encoder_name(name)}"

    return compare(model.loss(batch), official, model, official_gradients(fixture, rename))


def model_with_official_weights(model_name: str, weights: Path, sequences: Path, attributes: Path) -> torch.nn.Module:
    """Our model on a dataset with the official weights, imported through the name map."""
    import torch

    from elcrec.data.attributes import read_item2attributes
    from elcrec.data.sequences import SequenceData
    from elcrec.models.base import PretrainingData
    from elcrec.models.reference import convert_reference_state, convert_s3rec_state
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    data = SequenceData.load(sequences)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    if model_name == "elcrec":
        model = build("elcrec", data.vocab_size, model_defaults("elcrec") | ELCREC_BEAUTY)
        backbone, centres = convert_reference_state(state)
        model.backbone.load_state_dict(backbone, strict=True)
        model.centres.data.copy_(centres)
        return model
    items = set(range(1, data.max_item_id + 1))
    pretraining = PretrainingData.of(data, 50, read_item2attributes(attributes, items), Path(sequences).stem)
    model = build("s3rec", pretraining.vocab_size, model_defaults("s3rec"))  # the official shape
    model.prepare_pretraining(pretraining)
    model.load_state_dict(convert_s3rec_state(state), strict=True)
    return model


def check(model_name: str, weights: Path, sequences: Path, attributes: Path | None, folder: Path = FIXTURES) -> dict:
    """The record rule `official_check` writes: what was compared and the largest differences, or,
    when `weights` is not the file the fixture was made with (the smoke run's stand-in), why not."""
    from elcrec.fileio import file_digest

    if model_name not in CHECKS:
        raise ElcrecError(f"no check against the official code for {model_name!r} (checked: {sorted(CHECKS)})")
    spec = CHECKS[model_name]
    fixture, record = load_fixture(spec["fixture"], folder)
    result = {
        "model": model_name,
        "official_code": f"{record.get('repository') or record.get('repo')} @ {record['commit']}",
        "compared": spec["compared"],
        "departures": spec["departures"],
        "fixture": f"tests/data/official/{spec['fixture']}",
    }
    digest = file_digest(weights, "sha256")
    if digest != spec["weights_sha256"]:
        why = f"{Path(weights).name} is not the official file (sha256 {digest[:12]})"
        return result | {"status": f"not compared: {why}"}
    model = model_with_official_weights(model_name, Path(weights), Path(sequences), attributes and Path(attributes))
    differences = (s3rec_differences if model_name == "s3rec" else elcrec_differences)(model, fixture)
    status = "equal within float32 rounding" if differences["within_tolerance"] else "DIFFERS"
    return result | {"status": status} | differences


TABLE_COLUMNS = [
    "model",
    "dataset",
    "official_code",
    "status",
    "compared",
    "largest_loss_share",
    "largest_gradient_share",
    "gradient_parameter",
    "departures",
]


def table(root: str | Path) -> pd.DataFrame:
    """The report's "Checked against the official code": every Table 1 model, with the records rule
    `official_check` wrote under `root` ({dataset}/{model}.json), or why it has none yet."""
    records = {}
    for path in sorted(Path(root).glob("*/*.json")):
        records.setdefault(path.stem, []).append((path.parent.name, json.loads(path.read_text(encoding="utf-8"))))
    rows = []
    for model, code in OFFICIAL_CODE.items():
        if model not in records:
            status = (
                "not checked yet: a fixture of its official code is still to be made (its fidelity rests on reading it)"
            )
            rows.append({"model": model, "official_code": code, "status": status})
            continue
        for dataset, record in records[model]:
            gradient = record.get("largest_gradient") or {}
            share = gradient["difference"] / (gradient["largest"] + GRADIENT_FLOOR) if gradient else None
            rows.append(
                {
                    "model": model,
                    "dataset": dataset,
                    "official_code": record["official_code"],
                    "status": record["status"],
                    "compared": record["compared"],
                    "largest_loss_share": record.get("largest_loss_share"),
                    "largest_gradient_share": share,
                    "gradient_parameter": gradient.get("parameter"),
                    "departures": record.get("departures"),
                }
            )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)

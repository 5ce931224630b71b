"""ELCRec's training step against yueliu1999/ELCRec (docs/OFFICIAL.md "ELCRec"): our model with the
released Beauty checkpoint on the fixture's batch and its two views, the paper's Beauty settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from elcrec.official.common import compare, official_gradients

CHECK = {
    "fixture": "elcrec_train_beauty",
    "weights": "ELCRec-Beauty-1.pt",
    "weights_sha256": "56ad0aba39269ba901deac55660edf35ce8e0bc7de599e47eca54bb4885d8af4",
    "compared": (
        "a training step on the released Beauty checkpoint (the paper's Beauty settings): next-item BCE, "
        "instance CL with the centre shift, cluster loss, intent CL, the total; every gradient, centres included"
    ),
    "departures": "none switched off",
}

LOSSES = {
    "next_item": "loss/rec_loss",
    "instance_cl": "loss/cl_loss1_instance",
    "cluster": "loss/cluster_loss_weighted",
    "intent_cl": "loss/cl_loss3_intent",
    "total": "loss/joint_loss",
}
BEAUTY = {"layers": 1, "clusters": 256, "alpha": 10, "fusion": "shift"}  # config.yaml, the authors' script


def with_official_weights(weights: Path, sequences: Path) -> torch.nn.Module:
    """Our ELCRec on the dataset, the released checkpoint's encoder and centres loaded strictly."""
    from elcrec.data.sequences import SequenceData
    from elcrec.models.reference import convert_reference_state
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    data = SequenceData.load(sequences)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    model = build("elcrec", data.vocab_size, model_defaults("elcrec") | BEAUTY)
    backbone, centres = convert_reference_state(state)
    model.backbone.load_state_dict(backbone, strict=True)
    model.centres.data.copy_(centres)
    return model


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our ELCRec (the released checkpoint loaded) in eval mode on the fixture's training batch: its
    inputs, targets, negatives and the two views (the official code encodes them for both losses)."""
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
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}

    def rename(name: str) -> str:
        return "centres" if name == CENTRES_KEY else f"backbone.{encoder_name(name)}"

    return compare(model.loss(batch), official, model, official_gradients(fixture, rename))


def check(fixture: dict[str, np.ndarray], record: dict, weights: Path, sequences: Path, attributes=None) -> dict:
    return differences(with_official_weights(weights, sequences), fixture)

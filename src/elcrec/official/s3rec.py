"""S3-Rec's pre-training against aHuiWang/CIKM2020-S3Rec (docs/OFFICIAL.md "S3-Rec"): our model with
the official pre-trained Beauty weights, imported through the name map, on the fixture's batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from elcrec.official.common import compare, official_gradients

CHECK = {
    "fixture": "s3rec_pretrain_beauty",
    "weights": "S3Rec-Beauty-epochs-150.pt",
    "weights_sha256": "a196408d383719bccd1898b5f3f879bd2cdf6490ad9ee21ce0291cae97bd0508",
    "compared": "pre-training on the official Beauty weights: AAP, MIP, MAP, SP, the total; every gradient",
    "departures": "none switched off",
}

# our batch <- the official code's names
BATCH = {
    "items": "pos_items",
    "masked_items": "masked_item_sequence",
    "negatives": "neg_items",
    "masked_segments": "masked_segment_sequence",
    "positive_segments": "pos_segment",
    "negative_segments": "neg_segment",
}
LOSSES = {"aap": "aap_loss", "mip": "mip_loss", "map": "map_loss", "sp": "sp_loss", "total": "total"}


def with_official_weights(weights: Path, sequences: Path, attributes: Path) -> torch.nn.Module:
    """Our S3-Rec on the dataset, the official weights (pre-training heads included) loaded strictly."""
    from elcrec.data.attributes import read_item2attributes
    from elcrec.data.sequences import SequenceData
    from elcrec.models.base import PretrainingData
    from elcrec.models.reference import convert_s3rec_state
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    data = SequenceData.load(sequences)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    items = set(range(1, data.max_item_id + 1))
    pretraining = PretrainingData.of(data, 50, read_item2attributes(attributes, items), Path(sequences).stem)
    model = build("s3rec", pretraining.vocab_size, model_defaults("s3rec"))  # the official shape
    model.prepare_pretraining(pretraining)
    model.load_state_dict(convert_s3rec_state(state), strict=True)
    return model


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our S3-Rec (official weights loaded) in eval mode on the fixture's pre-training batch."""
    from elcrec.models.reference import s3rec_name

    model.eval().zero_grad()
    batch = {ours: torch.from_numpy(fixture[theirs]) for ours, theirs in BATCH.items()}
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}
    gradients = official_gradients(fixture, s3rec_name)
    return compare(model.pretraining_loss(batch), official, model, gradients)


def check(fixture: dict[str, np.ndarray], record: dict, weights: Path, sequences: Path, attributes: Path) -> dict:
    return differences(with_official_weights(weights, sequences, attributes), fixture)

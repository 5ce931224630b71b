"""SASRec's variant `kang205` against the code the paper's Table 12 names for SASRec (kang205/SASRec,
TensorFlow 1; docs/OFFICIAL.md): our SASRec with `architecture: kang205`, given the official seeded
initialisation (in the fixture), on the official sampler's batch and its negatives: the BCE, every
gradient, and the scores of every item at the last position of the official test inputs.

The official ids are ours (1-based, 0 = padding); our item table has one row more (the mask id,
last), kept at our own initialisation, not scored, and given no gradient. The official table's row 0
is a variable that model.py never reads (it looks up a copy whose row 0 is zero): ours is loaded
with that row zeroed.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.official.common import compare, official_gradients, official_state

CHECK = {
    "fixture": "sasrec_kang205_train",
    "model": "sasrec",  # the model whose variant `kang205` this checks
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "SASRec variant kang205: a training step of the official seeded tiny model (hidden 16, 2 blocks, 2 heads, "
        "maxlen 8) on the first batch of 8 of its own sampler with its negatives, dropout off: the BCE, every "
        "gradient; the scores of every item for its 24 test inputs"
    ),
    "departures": "none switched off",
}
BLOCK = re.compile(r"SASRec/num_blocks_(\d+)/(.+)")
IN_BLOCK = {
    "ln/Variable": "attention_norm.bias",  # modules.py normalize: beta, then gamma
    "ln/Variable_1": "attention_norm.weight",
    "self_attention/dense/kernel": "query.weight",
    "self_attention/dense/bias": "query.bias",
    "self_attention/dense_1/kernel": "key.weight",
    "self_attention/dense_1/bias": "key.bias",
    "self_attention/dense_2/kernel": "value.weight",
    "self_attention/dense_2/bias": "value.bias",
    "ln_1/Variable": "feed_forward_norm.bias",
    "ln_1/Variable_1": "feed_forward_norm.weight",
    "multihead_attention/conv1d/kernel": "expand.weight",
    "multihead_attention/conv1d/bias": "expand.bias",
    "multihead_attention/conv1d_1/kernel": "contract.weight",
    "multihead_attention/conv1d_1/bias": "contract.bias",
}
OUTSIDE = {
    "SASRec/input_embeddings/lookup_table": "item_embedding.weight",
    "SASRec/dec_pos/lookup_table": "position_embedding.weight",
    "SASRec/ln/Variable": "final_norm.bias",
    "SASRec/ln/Variable_1": "final_norm.weight",
}
ITEMS = "backbone.item_embedding.weight"


def rename(name: str) -> str:
    found = BLOCK.fullmatch(name)
    ours = f"blocks.{found[1]}.{IN_BLOCK.get(found[2], '?')}" if found else OUTSIDE.get(name)
    if ours is None or ours.endswith("?"):
        raise ElcrecError(f"sasrec kang205: unexpected official variable {name!r}")
    return f"backbone.{ours}"


def as_ours(name: str, value: torch.Tensor) -> torch.Tensor:
    """A TF kernel [in, out] (a conv1d's [1, in, out]) as our Linear weight [out, in]."""
    return value.reshape(value.shape[-2:]).T.contiguous() if name.endswith("kernel") else value


def with_official_weights(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    """Our SASRec `kang205` at the official sizes, its seeded initialisation loaded strictly, eval mode."""
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    official = record["settings"]
    settings = model_defaults("sasrec") | {
        "architecture": "kang205",
        "hidden_size": official["hidden_units"],
        "layers": official["num_blocks"],
        "heads": official["num_heads"],
        "max_len": official["maxlen"],
        "dropout": official["dropout_rate"],
    }
    state = official_state(fixture, rename, as_ours)
    items = len(state[ITEMS])  # official itemnum + 1 (0 = padding)
    torch.manual_seed(0)
    model = build("sasrec", items + 1, settings)
    state[ITEMS] = torch.cat([state[ITEMS], model.state_dict()[ITEMS][items:]])  # the mask id's row: ours
    state[ITEMS][0] = 0  # model.py looks up a copy whose row 0 is zero
    model.load_state_dict(state, strict=True)
    return model.eval()


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    model = with_official_weights(fixture, record)
    model.zero_grad()
    batch = {
        "input": torch.from_numpy(fixture["batch/seq"]),
        "target": torch.from_numpy(fixture["batch/pos"]),
        "negative": torch.from_numpy(fixture["batch/neg"]),
    }
    with torch.no_grad():
        scores = model.score({"input": torch.from_numpy(fixture["test/seq"])})[:, :-1]
    gradients = official_gradients(fixture, rename, as_ours)
    rows, values = gradients[ITEMS]  # the official table lacks the mask row: its gradient must be 0
    gradients[ITEMS] = (rows, torch.cat([values, torch.zeros_like(values[:1])]))
    official = {"total": float(fixture["loss/total"])}  # the BCE is the loss's only term
    return compare(model.loss(batch), official, model, gradients, scores=(scores, fixture["test/scores"]))

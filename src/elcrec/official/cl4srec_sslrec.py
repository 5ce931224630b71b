"""CL4SRec's `architecture: sslrec` against the code the paper's Table 12 names for CL4SRec
(HKUDS/SSLRec, models/sequential/cl4srec.py; docs/OFFICIAL.md): ours given the official seeded
initialisation (in the fixture) and the official two augmented views of the batch (its
`_cl4srec_aug`, recorded), in eval mode: the next-item cross-entropy, the weighted InfoNCE, the total,
every gradient and the full-ranking scores; then the training loop's inputs of the `sslrec` variant:
our `sslrec_views` given its recorded augmentation draws must make its views, and our `seq-aug`
examples of a few users must be its `_seq_aug` examples. SSLRec's ids are ours (0 padding, items
1..n, the mask id n + 1: our last row), so the tables load as they are.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.data.batches import SSLRecDraws, TrainingData, sslrec_views, training_batches
from elcrec.data.sequences import SequenceData
from elcrec.official.common import compare, official_gradients, official_state

CHECK = {
    "fixture": "cl4srec_sslrec_train",
    "model": "cl4srec",  # the model whose `architecture: sslrec` this checks
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "CL4SRec as SSLRec computes it: a step of its seeded tiny model (hidden 16, 2 layers, 2 heads, max_len 8) "
        "on 8 left-padded rows with its own two augmented views, eval mode: the cross-entropy, the weighted "
        "InfoNCE, the total, every gradient; the full-ranking scores of the 8 rows; the two views of 160 rows "
        "made from its recorded draws; the training examples of 12 users"
    ),
    "departures": (
        "none switched off; named: where its reorder raises ValueError (a full row, the last start) ours leaves "
        "the row as it is; its examples from the training part of our split (docs/OFFICIAL.md)"
    ),
}
SSLREC_RATES = {"tau": 0.6, "gamma": 0.3, "beta": 0.6}  # cl4srec.py's eta, gamma, beta (never passed)
LAYER = re.compile(r"transformer_layers\.(\d+)\.(.+)")
IN_LAYER = {
    "attention.linear_layers.0": "query",
    "attention.linear_layers.1": "key",
    "attention.linear_layers.2": "value",
    "attention.output_linear": "output",
    "feed_forward.w_1": "expand",
    "feed_forward.w_2": "contract",
    "input_sublayer.norm": "attention_norm",
    "output_sublayer.norm": "feed_forward_norm",
}
OUTSIDE = {
    "emb_layer.token_emb.weight": "item_embedding.weight",
    "emb_layer.position_emb.weight": "position_embedding.weight",
}


def rename(name: str) -> str:
    found = LAYER.fullmatch(name)
    if found:
        module, _, kind = found[2].rpartition(".")
        if module in IN_LAYER:
            return f"backbone.layers.{found[1]}.{IN_LAYER[module]}.{kind}"
    elif name in OUTSIDE:
        return f"backbone.{OUTSIDE[name]}"
    raise ElcrecError(f"cl4srec sslrec: unexpected official parameter {name!r}")


def with_official_weights(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    official = record["settings"]["model"]
    settings = model_defaults("cl4srec") | {
        "architecture": "sslrec",
        "hidden_size": official["embedding_size"],
        "layers": official["n_layers"],
        "heads": official["n_heads"],
        "inner_size": 4 * official["embedding_size"],  # cl4srec.py:23
        "max_len": official["max_seq_len"],
        "dropout": official["dropout_rate"],
        "instance_weight": official["lmd"],
        "temperature": official["tau"],
    }
    torch.manual_seed(0)
    model = build("cl4srec", record["settings"]["item_num"] + 2, settings)
    model.load_state_dict(official_state(fixture, rename), strict=True)
    return model.eval()


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    model = with_official_weights(fixture, record)
    seqs = torch.from_numpy(fixture["batch/seqs"])
    target = torch.zeros_like(seqs)
    target[:, -1] = torch.from_numpy(fixture["batch/last_items"])
    batch = {
        "input": seqs,
        "target": target,
        "views": torch.cat([torch.from_numpy(fixture["views/one"]), torch.from_numpy(fixture["views/two"])]),
    }
    model.zero_grad()
    with torch.no_grad():
        scores = model.score({"input": seqs})[:, :-1]  # full_predict: rows 0..items
    losses = model.loss(batch)
    ours = {
        "next_item": losses["next_item"],
        "weighted_cl": losses["instance_cl"] * model.instance_weight,
        "total": losses["total"],
    }
    official = {
        name: float(fixture[f"loss/{key}"])
        for name, key in (("next_item", "rec_loss"), ("weighted_cl", "cl_loss"), ("total", "total"))
    }
    result = compare(ours, official, model, official_gradients(fixture, rename), scores=(scores, fixture["scores"]))
    views, examples = views_equal(fixture, record), examples_equal(fixture)
    return result | {
        "views_equal": views,
        "examples_equal": examples,
        "within_tolerance": result["within_tolerance"] and views and examples,
    }


def views_equal(fixture: dict[str, np.ndarray], record: dict) -> bool:
    """Our `sslrec_views` of the recorded rows, given the official draws, against its views."""
    arrays = {key: torch.from_numpy(fixture[f"augment/{key}"]) for key in ("rows", "ops", "starts", "masked", "order")}
    draws = SSLRecDraws(arrays["ops"], arrays["starts"], arrays["masked"], arrays["order"])
    mask_id = record["settings"]["item_num"] + 1
    ours = sslrec_views(arrays["rows"], mask_id, draws, SSLREC_RATES["tau"], SSLREC_RATES["beta"])
    official = np.concatenate([fixture["augment/one"], fixture["augment/two"]])
    return ours.shape == official.shape and bool((ours.numpy() == official).all())


def examples_equal(fixture: dict[str, np.ndarray]) -> bool:
    """Our `seq-aug` examples (input and next item) of the recorded users, as a multiset, against the
    official `_seq_aug` examples of the same users (users' train.tsv rows from our split's training part)."""
    ends = np.cumsum(fixture["examples/lengths"])
    sequences = np.split(fixture["examples/sequences"], ends[:-1])
    split = SequenceData.from_sequences(sequences).split(max_len=fixture["examples/inputs"].shape[1])
    generator = torch.Generator().manual_seed(0)
    ours = [
        (*row.tolist(), target)
        for batch in training_batches(TrainingData.of(split), 1 << 20, generator, unit="seq-aug")
        for row, target in zip(batch["input"], batch["target"][:, -1].tolist(), strict=True)
    ]
    official = [
        (*row, target)
        for row, target in zip(fixture["examples/inputs"].tolist(), fixture["examples/targets"].tolist(), strict=True)
    ]
    return sorted(ours) == sorted(official)

"""BERT4Rec against FeiSun/BERT4Rec (TensorFlow; docs/OFFICIAL.md): our model given the official
seeded initialisation (the Beauty configuration at 32 dims, max_seq_length 10) and one batch of 6
cloze-masked training windows of the benchmark Beauty file; the masked-item loss, every gradient and
the logits of the [MASK] appended after each history.

Name map: BERT's variables to ours, dense kernels transposed ([in, out] -> [out, in]), LayerNorm
gamma/beta -> weight/bias. The official item ids are FreqVocab's (by frequency, then three special
tokens); ours follow the data, so the embedding rows and output biases are permuted by the fixture's
`official_ids` (our id -> official id). The official embeddings add token type 0 to every position
(token_type_ids None): that row is folded into our position table (exact: a sum), so the official
gradient of token type 0 is compared with the sum of our position gradients, and that of type 1
must be 0. The official softmax's two rows ours lacks ([pad] and [NO_USE], which no sequence holds)
are switched off in the fixture (output bias -1e4; see the maintainer script): their gradients must
be 0, and they are not compared as scores.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch

from elcrec.official.common import compare

CHECK = {
    "fixture": "bert4rec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "one step on the official seeded initialisation (Beauty config at 32 dims, max_seq_length 10), 6 cloze-masked "
        "training windows of Beauty: the masked-item loss; every gradient; the logits of the appended [MASK]"
    ),
    "departures": (
        "the official softmax's two rows no sequence holds ([pad], [NO_USE]; ours has none) given output bias -1e4"
    ),
}
LOSSES = {"cloze": "loss/masked_lm_loss", "total": "loss/masked_lm_loss"}
TOKEN_TYPES = "bert/embeddings/token_type_embeddings"
TABLES = {
    "bert/embeddings/word_embeddings": "backbone.item_embedding.weight",
    "cls/predictions/output_bias": "output_bias",
}
LAYER = {
    "attention/self/query": "attention.query",
    "attention/self/key": "attention.key",
    "attention/self/value": "attention.value",
    "attention/output/dense": "attention.output",
    "attention/output/LayerNorm": "attention.norm",
    "intermediate/dense": "feed_forward.expand",
    "output/dense": "feed_forward.contract",
    "output/LayerNorm": "feed_forward.norm",
}
SUFFIX = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def rename(name: str) -> str:
    """An official variable name -> our parameter name."""
    if name in TABLES:
        return TABLES[name]
    if name == "bert/embeddings/position_embeddings":
        return "backbone.position_embedding.weight"
    scope, suffix = name.rsplit("/", 1)
    fixed = {
        "bert/embeddings/LayerNorm": "backbone.embedding_norm",
        "cls/predictions/transform/dense": "transform",
        "cls/predictions/transform/LayerNorm": "transform_norm",
    }
    if scope in fixed:
        return f"{fixed[scope]}.{SUFFIX[suffix]}"
    _, _, layer, inner = scope.split("/", 3)  # bert/encoder/layer_i/<inner>
    return f"backbone.blocks.{layer.removeprefix('layer_')}.{LAYER[inner]}.{SUFFIX[suffix]}"


def ours(name: str, value: np.ndarray, fixture: dict[str, np.ndarray]) -> torch.Tensor:
    """An official weight (or gradient) in our layout: kernels transposed, tables in our id order."""
    tensor = torch.from_numpy(value)
    if name in TABLES:
        return tensor[torch.from_numpy(fixture["official_ids"])]
    return tensor.T.contiguous() if name.endswith("/kernel") else tensor


def build_model(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    config = record["settings"]
    settings = model_defaults("bert4rec") | {
        "hidden_size": config["hidden_size"],
        "inner_size": config["intermediate_size"],
        "layers": config["num_hidden_layers"],
        "heads": config["num_attention_heads"],
        "max_len": config["max_seq_length"],
        "dropout": config["hidden_dropout_prob"],
        "attention_dropout": config["attention_probs_dropout_prob"],
        "mask_prob": config["masked_lm_prob"],
        "max_predictions": config["max_predictions_per_seq"],
    }
    torch.manual_seed(0)
    model = build("bert4rec", len(fixture["official_ids"]), settings)
    state = {}
    for key, value in fixture.items():
        if key.startswith("weight/") and key != f"weight/{TOKEN_TYPES}":
            name = key.removeprefix("weight/")
            state[rename(name)] = ours(name, value, fixture)
    # token type 0, added to every position by the official embeddings, folded into the positions
    state["backbone.position_embedding.weight"] = state["backbone.position_embedding.weight"] + torch.from_numpy(
        fixture[f"weight/{TOKEN_TYPES}"][0]
    )
    model.load_state_dict(state, strict=True)
    return model


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    from elcrec.models import bert4rec

    model = build_model(fixture, record)
    model.eval().zero_grad()
    to_ours = torch.zeros(int(fixture["official_ids"].max()) + 1, dtype=torch.long)
    to_ours[torch.from_numpy(fixture["official_ids"])] = torch.arange(len(fixture["official_ids"]))
    # the training windows as the official masks found them, and the masks (the fixture's draw)
    windows = torch.from_numpy(fixture["input_ids"]).clone()
    rows = torch.arange(len(windows))[:, None].expand_as(torch.from_numpy(fixture["masked_lm_positions"]))
    taken = torch.from_numpy(fixture["masked_lm_weights"]) > 0
    positions = torch.from_numpy(fixture["masked_lm_positions"])
    windows[rows[taken], positions[taken]] = torch.from_numpy(fixture["masked_lm_ids"])[taken]
    windows = to_ours[windows]
    masked = torch.zeros_like(windows, dtype=torch.bool)
    masked[rows[taken], positions[taken]] = True
    # our batch: training_items(batch) = input[:, 1:] + target[:, -1] holds the window
    first = windows[:, :1]
    batch = {
        "users": torch.arange(len(windows)),
        "input": torch.cat([first, windows[:, :-1]], dim=1),
        "target": torch.cat([windows[:, :-1], windows[:, -1:]], dim=1),
    }
    with mock.patch.object(bert4rec, "cloze_mask", lambda items, probability, most: masked):
        losses = model.loss(batch)
    official = {name: float(fixture[key]) for name, key in LOSSES.items()}
    gradients = {}
    for key in (key for key in fixture if key.startswith("grad/") and key != f"grad/{TOKEN_TYPES}"):
        name = key.removeprefix("grad/")
        gradients[rename(name)] = (None, ours(name, fixture[key], fixture))
    with torch.no_grad():
        scores = model.score({"input": windows, "users": batch["users"]})
    official_scores = fixture["scores"][:, fixture["official_ids"]]
    found = compare(losses, official, model, gradients, scores=(scores, official_scores))
    # the folded token types: type 0's gradient is the sum of the positions', type 1's is 0
    position_grad = model.backbone.position_embedding.weight.grad.sum(0)
    token_types = torch.from_numpy(fixture[f"grad/{TOKEN_TYPES}"])
    unused = torch.from_numpy(fixture["unused_official_ids"])
    stray = max(
        float(token_types[1].abs().max()),
        float(torch.from_numpy(fixture["grad/bert/embeddings/word_embeddings"])[unused].abs().max()),
        float(torch.from_numpy(fixture["grad/cls/predictions/output_bias"])[unused].abs().max()),
    )
    difference, largest = float((position_grad - token_types[0]).abs().max()), float(token_types[0].abs().max())
    found["token_type_0"] = {"difference": difference, "largest": largest, "unused_rows_and_type_1": stray}
    found["within_tolerance"] = found["within_tolerance"] and difference <= 1e-4 * largest + 1e-6 and stray <= 1e-6
    return found

"""IOCRec's training step and scores against LFM-bot/IOCRec (docs/OFFICIAL.md "IOCRec"): our model with
the official model's seeded initialisation (in the fixture) on the fixture's batch of 8 prefix
examples and their two official views, and the scores of 8 evaluation users.

The official code pads on the right (dataset.py get_SRtask_input); our batches are left-padded, so
each official row is moved to the right end of its row here (`left_padded`) and our model moves it
back (models/iocrec.py `right_padded`). The official views (crop / mask / reorder, drawn once by the
official dataset) are handed to our model as the batch's `views` with `views: protocol`
(IOCRec._views then takes them as they are instead of drawing its own); everything else is our
default IOCRec at the fixture's tiny size.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from elcrec.official.common import compare, official_gradients, official_state

LOSSES = {"next_item": "loss/rec_loss", "intent_cl": "loss/cl_loss", "total": "loss/total"}
# the fixture's official sizes (its json "settings") under our names; the rest are our defaults
SIZES = {"hidden_size": 32, "inner_size": 64, "layers": 3, "heads": 2, "max_len": 10, "clusters": 4}
ITEMS = 60  # tests/data/benchmark/Beauty.txt; the official model's 62 embedding rows = our vocab (items + 2)
RENAMED = [  # official name (regular expression) -> ours
    (r"^item_embedding\.", "backbone.item_embedding."),
    (r"^position_embedding\.", "backbone.position_embedding."),
    (r"^input_layer_norm\.", "backbone.embedding_norm."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.self_attention\.fc_q\.", r"backbone.blocks.\1.attention.query."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.self_attention\.fc_k\.", r"backbone.blocks.\1.attention.key."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.self_attention\.fc_v\.", r"backbone.blocks.\1.attention.value."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.self_attention\.fc_o\.", r"backbone.blocks.\1.attention.output."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.attn_layer_norm\.", r"backbone.blocks.\1.attention.norm."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.pff\.fc1\.", r"backbone.blocks.\1.feed_forward.expand."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.pff\.fc2\.", r"backbone.blocks.\1.feed_forward.contract."),
    (r"^local_encoder\.encoder_layers\.(\d+)\.pff_layer_norm\.", r"backbone.blocks.\1.feed_forward.norm."),
    (r"^global_seq_encoder\.Q_s$", "global_encoder.queries"),
    (r"^global_seq_encoder\.K_linear\.", "global_encoder.key."),
    (r"^global_seq_encoder\.V_linear\.", "global_encoder.value."),
    (r"^disentangle_encoder\.intentions$", "disentangler.prototypes"),
    (r"^disentangle_encoder\.rou$", "disentangler.query_offset"),
    (r"^disentangle_encoder\.pos_fai\.", "disentangler.position."),
    (r"^disentangle_encoder\.W\.", "disentangler.key_transform."),
    (r"^disentangle_encoder\.layer_norm_1\.", "disentangler.item_norm."),  # item2IntentionScore: the states
    (r"^disentangle_encoder\.layer_norm_2\.", "disentangler.prototype_norm."),  # and the intentions
    (r"^disentangle_encoder\.layer_norm_3\.", "disentangler.query_norm."),  # item2AttnWeight: the query
    (r"^disentangle_encoder\.layer_norm_4\.", "disentangler.key_norm."),  # and the keys
    (r"^disentangle_encoder\.layer_norm_5\.", "disentangler.output_norm."),  # intention_disentangling
]


def rename(name: str) -> str:
    """An official parameter name -> ours."""
    for pattern, ours in RENAMED:
        if re.search(pattern, name):
            return re.sub(pattern, ours, name)
    raise KeyError(f"iocrec: no name of ours for the official parameter {name!r}")


def left_padded(ids: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
    """Right-padded official rows [n, L] with their lengths -> the same items at the end of each row."""
    ids, width = torch.from_numpy(ids), ids.shape[1]
    moved = torch.zeros_like(ids)
    for row, length in enumerate(lengths.tolist()):
        moved[row, width - length :] = ids[row, :length]
    return moved


def our_batch(fixture: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The official batch of prefix examples as our data pipeline lays one out (data/batches.py
    prefix_batches): each example's prefix left-padded, its target row the next item of every
    position (the example's own target last), and both views stacked [2b, L], view one first."""
    lengths = fixture["batch/seq_len"]
    inputs = left_padded(fixture["batch/item_seq"], lengths)
    target = torch.zeros_like(inputs)
    target[:, :-1] = inputs[:, 1:]
    target[:, -1] = torch.from_numpy(fixture["batch/target"])
    views = [left_padded(fixture[f"batch/aug_seq_{view}"], fixture[f"batch/aug_len_{view}"]) for view in (1, 2)]
    return {
        "users": torch.arange(len(inputs)),
        "input": inputs,
        "target": target,
        "negative": torch.zeros_like(inputs),  # IOCRec's loss has no negatives (full-softmax CE)
        "views": torch.cat(views),
    }


def with_official_weights(fixture: dict[str, np.ndarray]) -> torch.nn.Module:
    """Our IOCRec at the fixture's size, the official seeded initialisation loaded strictly."""
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    torch.manual_seed(0)
    model = build("iocrec", ITEMS + 2, model_defaults("iocrec") | SIZES | {"views": "protocol"})
    model.load_state_dict(official_state(fixture, rename), strict=True)
    return model


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our IOCRec in eval mode (dropout off, as the fixture's step): both losses, the total, every
    gradient after our total's backward, and the scores of the fixture's evaluation batch."""
    model.eval().zero_grad()
    official = {ours: float(fixture[theirs]) for ours, theirs in LOSSES.items()}
    losses = model.loss(our_batch(fixture))
    with torch.no_grad():
        scores = model.score({"input": left_padded(fixture["eval/item_seq"], fixture["eval/seq_len"])})
    return compare(losses, official, model, official_gradients(fixture, rename), scores=(scores, fixture["scores"]))


def check(fixture: dict[str, np.ndarray], record: dict, weights: Path | None = None, sequences=None, attributes=None):
    return differences(with_official_weights(fixture), fixture)


CHECK = {
    "fixture": "iocrec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "a training step of the official model's seeded initialisation (tiny: d 32, 3 blocks, 4 intents, max_len 10) "
        "on 8 prefix examples of the benchmark Beauty with their two official crop/mask/reorder views, eval mode: "
        "next-item full-softmax CE, intent CL, the total; every gradient; the full scores of 8 evaluation users"
    ),
    "departures": "none switched off",
}

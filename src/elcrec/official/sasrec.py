"""SASRec's training step against the ICLRec code base (salesforce/ICLRec, the code ELCRec is built
on; docs/OFFICIAL.md): our SASRec given the official model's seeded weights, the batch its own
training dataloader made (negatives drawn by the official sampler) and compared on the next-item
BCE, every gradient and the full-ranking scores.

The official code has no SASRec option: its `--contrast_type` picks the contrastive terms
(InstanceCL, IntentCL, Hybrid), and a value none of its branches matches leaves only
`rec_weight x rec_loss` (salesforce/ICLRec src/trainers.py:338-342), the SASRecModel with the
next-item BCE of Trainer.cross_entropy (trainers.py:140-156): that run (`none`) made the fixture
(workflow/scripts/official/iclrec_train.py). The fixture is tiny (24 users, hidden 16, two layers,
max_len 10) and holds the official weights, so its check needs no files.

The helpers here (the name map, the settings, the batch, the comparison) serve the CL4SRec and
ICLRec checks too, whose fixtures the same script makes with the same model.
"""

from __future__ import annotations

import numpy as np
import torch

from elcrec import ElcrecError
from elcrec.official.common import compare, official_gradients, official_state

LOSSES = {"next_item": "loss/rec_loss", "total": "loss/joint_loss"}
# what our models do and the official run must have had
OFFICIAL_SETTINGS = {
    "hidden_act": "gelu",
    "rec_weight": 1.0,
    "seq_representation_type": "mean",
    "seq_representation_instancecl_type": "concatenate",
    "de_noise": False,
}
CHECK = {
    "fixture": "sasrec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "a training step of the ICLRec code's SASRec (contrast type none: next-item BCE alone) on its seeded tiny "
        "model and a batch of 8 of its own training dataset: the next-item BCE, the total, every gradient; "
        "the full-ranking scores of 24 validation users"
    ),
    "departures": "none switched off",
}


def rename(name: str) -> str:
    """Our parameter name for one of the official SASRecModel's."""
    from elcrec.models.reference import encoder_name

    ours = encoder_name(name)
    if ours is None:
        raise ElcrecError(f"official parameter {name!r}: not one of the ICLRec-layout encoder's")
    return f"backbone.{ours}"


def our_settings(record: dict) -> dict:
    """Our settings for the fixture's official arguments (its `settings`)."""
    official = record["settings"]
    for key, value in OFFICIAL_SETTINGS.items():
        if official[key] != value:
            raise ElcrecError(f"{record['model']} fixture: official {key} is {official[key]!r}; ours is {value!r}")
    return {
        "hidden_size": official["hidden_size"],
        "layers": official["num_hidden_layers"],
        "heads": official["num_attention_heads"],
        "inner_size": 4 * official["hidden_size"],  # modules.py Intermediate: hidden x 4
        "max_len": official["max_seq_length"],
        "dropout": official["hidden_dropout_prob"],
        "attention_dropout": official["attention_probs_dropout_prob"],
        "init_std": official["initializer_range"],
        "instance_weight": official["cf_weight"],
        "intent_weight": official["intent_cf_weight"],
        "temperature": official["temperature"],
        "clusters": int(official["num_intent_clusters"]),
    }


def with_official_weights(
    model_name: str, fixture: dict[str, np.ndarray], record: dict, buffers: dict | None = None
) -> torch.nn.Module:
    """Our model at the fixture's size, the official weights (and `buffers`) loaded strictly, eval mode."""
    from elcrec.models.registry import build
    from elcrec.settings import model_defaults

    settings = model_defaults(model_name)
    settings |= {key: value for key, value in our_settings(record).items() if key in settings}
    torch.manual_seed(0)
    model = build(model_name, record["settings"]["item_size"], settings)
    model.load_state_dict(official_state(fixture, rename) | (buffers or {}), strict=True)
    return model.eval()


def training_batch(fixture: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The official batch in our layout (both left-padded, 0 the padding; views one then two)."""
    views = [torch.from_numpy(fixture[f"cl_batches/0/{view}"]) for view in (0, 1)]
    return {
        "users": torch.from_numpy(fixture["user_ids"]),
        "input": torch.from_numpy(fixture["input_ids"]),
        "target": torch.from_numpy(fixture["target_pos"]),
        "negative": torch.from_numpy(fixture["target_neg"]),
        "views": torch.cat(views),
    }


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray], losses: dict[str, str]) -> dict:
    """Our losses (named as ours; `losses` maps them to the fixture's) on the official batch, every
    gradient after our total's backward and our scores of the official validation inputs."""
    model.zero_grad()
    with torch.no_grad():
        scores = model.score({"input": torch.from_numpy(fixture["scores_input_ids"])})
    official = {ours: float(fixture[theirs]) for ours, theirs in losses.items()}
    return compare(
        model.loss(training_batch(fixture)),
        official,
        model,
        official_gradients(fixture, rename),
        scores=(scores, fixture["scores"]),
    )


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    return differences(with_official_weights("sasrec", fixture, record), fixture, LOSSES)

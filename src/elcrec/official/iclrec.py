"""ICLRec's training step against salesforce/ICLRec (docs/OFFICIAL.md): its `--contrast_type Hybrid`
(src/trainers.py:311-336) on the official model's seeded tiny weights and a batch of 8 of its own
training dataset with its two views (the fixture from workflow/scripts/official/iclrec_train.py).

The E-step is the official one, made once and handed to ours: the official KMeans (faiss, 20
iterations, 5 redos, seed 1) on every training user's mean-pooled output in eval mode
(trainers.py:228-254); its raw centroids become our `centroids` (the assignment reads them: the
official faiss index holds them, models.py:73-80) and its L2-normalised ones our `intents` (the
contrast targets, models.py:71). Compared: next-item BCE, instance CL, intent CL, the total,
every gradient, the full-ranking scores, and the batch's intent assignments (ours from our
main-pass outputs and the raw centroids against the official index's)."""

from __future__ import annotations

import numpy as np
import torch

from elcrec.official.sasrec import differences, training_batch, with_official_weights

LOSSES = {
    "next_item": "loss/rec_loss",
    "instance_cl": "loss/cl_loss1",
    "intent_cl": "loss/cl_loss3",
    "total": "loss/joint_loss",
}
CHECK = {
    "fixture": "iclrec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "a training step of the official ICLRec (Hybrid) on its seeded tiny model, a batch of 8 of its own training "
        "dataset and its two views, its faiss k-means intents handed to ours: next-item BCE, instance CL, intent CL, "
        "the total, every gradient, the batch's intent assignments; the full-ranking scores of 24 validation users"
    ),
    "departures": "none switched off",
}


def with_official_intents(fixture: dict[str, np.ndarray], record: dict) -> torch.nn.Module:
    """Our ICLRec with the official weights and the official k-means result as its E-step."""
    buffers = {
        "centroids": torch.from_numpy(fixture["kmeans/centroids_raw"]),
        "intents": torch.from_numpy(fixture["kmeans/centroids"]),
    }
    return with_official_weights("iclrec", fixture, record, buffers)


def assignments(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> torch.Tensor:
    """Each batch user's intent as our loss picks it: the nearest raw centroid to its mean-pooled output."""
    from elcrec.models.losses import nearest_centre

    with torch.no_grad():
        return nearest_centre(model.backbone(training_batch(fixture)["input"]).mean(dim=1), model.centroids)


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    model = with_official_intents(fixture, record)
    ours = assignments(model, fixture)
    result = differences(model, fixture, LOSSES)
    equal = torch.equal(ours, torch.from_numpy(fixture["kmeans/intent_ids"]))
    return result | {"intent_assignments_equal": equal, "within_tolerance": result["within_tolerance"] and equal}

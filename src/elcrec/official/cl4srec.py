"""CL4SRec's training step against the ICLRec code base (salesforce/ICLRec, the code ELCRec is built
on; docs/OFFICIAL.md): its `--contrast_type InstanceCL` (src/trainers.py:284-288), the next-item BCE
plus `cf_weight` x the instance contrastive loss of two augmented views flattened over all
positions (trainers.py:179-198, NCELoss modules.py:145-188), on the official model's seeded tiny
weights and a batch of 8 of its own training dataset with its two views; every gradient; the
full-ranking scores (the fixture from workflow/scripts/official/iclrec_train.py)."""

from __future__ import annotations

import numpy as np

from elcrec.official.sasrec import differences, with_official_weights

LOSSES = {"next_item": "loss/rec_loss", "instance_cl": "loss/cl_loss", "total": "loss/joint_loss"}
CHECK = {
    "fixture": "cl4srec_train",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "a training step of the ICLRec code with contrast type InstanceCL (CL4SRec as that code base runs it) on "
        "its seeded tiny model, a batch of 8 of its own training dataset and its two views: next-item BCE, "
        "instance CL, the total, every gradient; the full-ranking scores of 24 validation users"
    ),
    "departures": "none switched off",
}


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    return differences(with_official_weights("cl4srec", fixture, record), fixture, LOSSES)

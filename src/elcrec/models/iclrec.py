"""ICLRec (PROTOCOL.md "ICLRec"): expectation-maximisation over intents.

E-step, before every epoch: every training user is encoded (eval mode, mean over positions) and
k-means (faiss, 20 iterations, best of 5, run seed) finds the intents, from epoch 1 on starting at
the previous epoch's centroids: the authors build one faiss clustering in the trainer's constructor
(salesforce/ICLRec src/trainers.py:38) and train that same object every epoch (src/models.py:60),
and faiss takes the centroids it holds as its start (`kmeans_start: fresh`, not the reference,
draws a new random start every epoch). M-step, every batch: the main (un-augmented) embedding is
assigned to its nearest raw centroid; the two views, encoded again and mean-pooled, are each
contrasted with the batch of assigned L2-normalised centroids (intent CL); plus CL4SRec's
instance CL. The centroids are not parameters.
`shared_views: true` (not the reference) encodes the views once for both contrastive losses.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.models.base import (
    NEXT_ITEM_CHOICES,
    NEXT_ITEM_DEFAULTS,
    Batch,
    EpochContext,
    NextItemObjective,
    RecommenderModel,
    backbone_from,
    mean_pooled_users,
    view_rows,
)
from elcrec.models.kmeans import kmeans
from elcrec.models.losses import flattened_info_nce, intent_info_nce, nearest_centre
from elcrec.models.registry import register

KMEANS_STARTS = ("continue", "fresh")


@register
class ICLRec(RecommenderModel):
    name = "iclrec"
    choices = NEXT_ITEM_CHOICES | {"kmeans_start": KMEANS_STARTS}
    defaults = NEXT_ITEM_DEFAULTS | {
        "clusters": 256,
        "instance_weight": 0.1,
        "intent_weight": 0.1,
        "temperature": 1.0,
        "kmeans_iterations": 20,
        "kmeans_redo": 5,
        "shared_views": False,
        "kmeans_start": "continue",
    }
    needs_views = True

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        if settings["kmeans_start"] not in KMEANS_STARTS:
            found = settings["kmeans_start"]
            raise ElcrecError(f"iclrec: kmeans_start is {found!r}; expected one of {list(KMEANS_STARTS)}")
        self.backbone = backbone_from(vocab_size, settings)
        self.settings = {key: settings[key] for key in self.defaults}
        self.next_item = NextItemObjective(settings)
        shape = (settings["clusters"], self.backbone.settings.hidden_size)
        # raw k-means output, for assignment; also where the next E-step starts (`continue`), so
        # it is a persistent buffer: a resumed run continues from the same centroids
        self.register_buffer("centroids", torch.zeros(shape))
        self.register_buffer("intents", torch.zeros(shape))  # L2-normalised: the contrast targets

    def on_epoch_start(self, context: EpochContext) -> None:
        users = mean_pooled_users(self.backbone, context)
        # before epoch 0 the buffer holds no E-step yet: the reference's first call starts afresh too
        continues = self.settings["kmeans_start"] == "continue" and context.epoch > 0
        found = kmeans(
            users,
            self.settings["clusters"],
            context.seed,
            self.settings["kmeans_iterations"],
            self.settings["kmeans_redo"],
            start=self.centroids if continues else None,
        ).to(self.centroids.device)
        self.centroids.copy_(found)
        self.intents.copy_(functional.normalize(found, dim=1))

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        size = batch["input"].shape[0]
        outputs = self.backbone(torch.cat(view_rows(batch, self.settings["shared_views"])))
        main, instance_views = outputs[:size], outputs[size : 3 * size]
        intent_views = instance_views if self.settings["shared_views"] else outputs[3 * size :]
        next_item = self.next_item(main, self.backbone.item_embedding, batch)
        instance = flattened_info_nce(instance_views, self.settings["temperature"])
        with torch.no_grad():
            assigned = nearest_centre(main.mean(dim=1), self.centroids)
        intent = intent_info_nce(intent_views, self.intents[assigned], self.settings["temperature"])
        total = next_item + self.settings["instance_weight"] * instance + self.settings["intent_weight"] * intent
        return {"next_item": next_item, "instance_cl": instance, "intent_cl": intent, "total": total}

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        embeddings = self.backbone(batch["input"]).mean(dim=1)
        return embeddings, nearest_centre(embeddings, self.centroids)  # the last E-step's centroids

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.backbone.last_state(batch["input"]))

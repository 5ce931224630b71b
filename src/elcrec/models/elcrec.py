"""ELCRec as the authors' code runs it (PROTOCOL.md "ELCRec as the code runs it").

- The k intent centres are parameters. `centre_init: kmeans` (the code): before epoch 0 every
  training user is encoded (eval mode, mean over positions) and k-means seeds the centres,
  L2-normalised; `random` (a reading of the paper's Algorithm 1): normalised Gaussian vectors.
- Every step the centres are L2-normalised in place, after the instance CL has used them and
  before the cluster loss, as in the code.
- Instance CL: at every position of both views the nearest centre is added (`fusion: shift`) or
  appended (`concat`), then InfoNCE over the flattened positions.
- Cluster loss on the normalised mean-pooled main output h (`cluster_loss: code|paper`, see
  losses.py), and intent CL of the two (re-encoded, mean-pooled) views against h's nearest centre.
- `ablation` picks the paper's Table 10 variant: B (next-item loss only), B+ICL (instance and
  intent CL; centres trained by the intent CL alone), B+ELCM (cluster loss only), ELCRec (all).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

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
from elcrec.models.losses import (
    CLUSTER_LOSS_MODES,
    cluster_loss,
    flattened_info_nce,
    intent_info_nce,
    nearest_centre,
)
from elcrec.models.registry import register

ABLATIONS = {"B": (False, False), "B+ICL": (True, False), "B+ELCM": (False, True), "ELCRec": (True, True)}
"""variant -> (intent-assisted contrastive learning, end-to-end learnable cluster module)"""
FUSIONS = ("shift", "concat")
CENTRE_INITS = ("kmeans", "random")


def _check_choice(name: str, value: object, choices) -> None:
    if value not in choices:
        raise ValueError(f"elcrec: `{name}` must be one of {list(choices)}, got {value!r}")


@register
class ELCRec(RecommenderModel):
    name = "elcrec"
    choices = NEXT_ITEM_CHOICES | {
        "ablation": tuple(ABLATIONS),
        "fusion": FUSIONS,
        "centre_init": CENTRE_INITS,
        "cluster_loss": CLUSTER_LOSS_MODES,
    }
    defaults = NEXT_ITEM_DEFAULTS | {
        "clusters": 256,
        "alpha": 1.0,
        "fusion": "concat",
        "instance_weight": 0.1,
        "intent_weight": 0.1,
        "temperature": 1.0,
        "centre_init": "kmeans",
        "cluster_loss": "code",
        "ablation": "ELCRec",
        "kmeans_iterations": 20,
        "kmeans_redo": 5,
        "shared_views": False,
    }

    def __init__(self, vocab_size: int, settings: dict) -> None:
        super().__init__()
        _check_choice("ablation", settings["ablation"], ABLATIONS)
        _check_choice("fusion", settings["fusion"], FUSIONS)
        _check_choice("centre_init", settings["centre_init"], CENTRE_INITS)
        _check_choice("cluster_loss", settings["cluster_loss"], CLUSTER_LOSS_MODES)
        self.backbone = backbone_from(vocab_size, settings)
        self.settings = {key: settings[key] for key in self.defaults}
        self.next_item = NextItemObjective(settings)
        self.uses_icl, self.uses_elcm = ABLATIONS[settings["ablation"]]
        self.needs_views = self.uses_icl
        initial = torch.randn(settings["clusters"], self.backbone.settings.hidden_size)
        self.centres = nn.Parameter(functional.normalize(initial, dim=1))

    def on_epoch_start(self, context: EpochContext) -> None:
        if context.epoch == 0 and self.settings["centre_init"] == "kmeans" and (self.uses_icl or self.uses_elcm):
            users = mean_pooled_users(self.backbone, context)
            found = kmeans(
                users,
                self.settings["clusters"],
                context.seed,
                self.settings["kmeans_iterations"],
                self.settings["kmeans_redo"],
            )
            self.centres.data.copy_(functional.normalize(found, dim=1).to(self.centres.device))

    def user_embeddings(self, outputs: torch.Tensor) -> torch.Tensor:
        """h: the L2-normalised mean over positions, what is clustered."""
        return functional.normalize(outputs.mean(dim=1), dim=1)

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        size = batch["input"].shape[0]
        rows = view_rows(batch, self.settings["shared_views"]) if self.uses_icl else [batch["input"]]
        outputs = self.backbone(torch.cat(rows))  # main, instance-CL views, intent-CL views
        main = outputs[:size]
        next_item = self.next_item(main, self.backbone.item_embedding, batch)
        losses = {"next_item": next_item}
        total = next_item
        if self.uses_icl:
            instance_views = outputs[size : 3 * size]
            with torch.no_grad():
                nearest = nearest_centre(instance_views, self.centres)
            if self.settings["fusion"] == "shift":
                fused = instance_views + self.centres[nearest]
            else:
                fused = torch.cat([instance_views, self.centres[nearest]], dim=-1)
            losses["instance_cl"] = flattened_info_nce(fused, self.settings["temperature"])
            total = total + self.settings["instance_weight"] * losses["instance_cl"]
        if self.uses_icl or self.uses_elcm:
            self.centres.data.copy_(functional.normalize(self.centres.data, dim=1))
            embeddings = self.user_embeddings(main)
        if self.uses_elcm:
            losses["cluster"] = cluster_loss(
                embeddings, self.centres, self.settings["alpha"], self.settings["cluster_loss"]
            )
            total = total + losses["cluster"]
        if self.uses_icl:
            with torch.no_grad():
                assigned = nearest_centre(embeddings, self.centres)
            intent_views = instance_views if self.settings["shared_views"] else outputs[3 * size :]
            losses["intent_cl"] = intent_info_nce(intent_views, self.centres[assigned], self.settings["temperature"])
            total = total + self.settings["intent_weight"] * losses["intent_cl"]
        losses["total"] = total
        return losses

    def user_snapshot(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        embeddings = self.user_embeddings(self.backbone(batch["input"]))
        if not (self.uses_icl or self.uses_elcm):
            return embeddings, None
        return embeddings, nearest_centre(embeddings, functional.normalize(self.centres, dim=1))

    def score(self, batch: Batch) -> torch.Tensor:
        return self.backbone.item_scores(self.backbone.last_state(batch["input"]))

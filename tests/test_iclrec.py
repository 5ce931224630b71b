import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch

from elcrec.models.base import mean_pooled_users
from elcrec.models.kmeans import kmeans
from elcrec.models.registry import build


def test_every_epoch_clusters_all_users_with_the_run_seed():
    torch.manual_seed(0)
    model = build("iclrec", VOCAB, settings_for("iclrec"))
    context = epoch_context(epoch=4, seed=7)
    model.on_epoch_start(context)
    expected = kmeans(mean_pooled_users(model.backbone, context), 3, seed=7)
    assert torch.equal(model.centroids, expected)
    assert torch.allclose(model.intents.norm(dim=1), torch.ones(3))
    assert not any("centroid" in name or "intent" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("shared_views", [False, True])
def test_loss_parts(shared_views):
    torch.manual_seed(0)
    model = build("iclrec", VOCAB, settings_for("iclrec", shared_views=shared_views))
    model.on_epoch_start(epoch_context())
    model.eval()
    losses = model.loss(tiny_batch())
    assert set(losses) == {"next_item", "instance_cl", "intent_cl", "total"}
    expected = losses["next_item"] + 0.1 * losses["instance_cl"] + 0.1 * losses["intent_cl"]
    assert losses["total"].item() == pytest.approx(expected.item(), rel=1e-6)

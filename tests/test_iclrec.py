import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch

from elcrec import ElcrecError
from elcrec.models.base import mean_pooled_users
from elcrec.models.kmeans import kmeans
from elcrec.models.registry import build


def test_every_epoch_clusters_all_users_with_the_run_seed():
    torch.manual_seed(0)
    model = build("iclrec", VOCAB, settings_for("iclrec"))
    context = epoch_context(epoch=0, seed=7)
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


def perturb(model, seed):
    """Stands in for an epoch of training: the next E-step sees other embeddings."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.backbone.parameters():
            parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))


@pytest.mark.parametrize("start", ["continue", "fresh"])
def test_from_epoch_1_the_e_step_starts_where_the_last_one_ended_unless_fresh(start):
    torch.manual_seed(0)
    # 1 iteration, 1 run: the start shows in the result (20 x 5 would converge from either start)
    chosen = settings_for("iclrec", kmeans_start=start, kmeans_iterations=1, kmeans_redo=1)
    model = build("iclrec", VOCAB, chosen)
    first_context, second_context = epoch_context(epoch=0, seed=7), epoch_context(epoch=1, seed=7)
    model.on_epoch_start(first_context)
    epoch_0 = model.centroids.clone()
    assert torch.equal(epoch_0, kmeans(mean_pooled_users(model.backbone, first_context), 3, 7, 1, 1))
    perturb(model, seed=3)
    users = mean_pooled_users(model.backbone, second_context)
    model.on_epoch_start(second_context)
    continued = kmeans(users, 3, 7, 1, 1, start=epoch_0)
    fresh = kmeans(users, 3, 7, 1, 1)
    assert not torch.allclose(continued, fresh, atol=1e-3)
    assert torch.equal(model.centroids, continued if start == "continue" else fresh)
    assert torch.allclose(model.intents, torch.nn.functional.normalize(model.centroids, dim=1))


def test_an_unknown_kmeans_start_is_refused():
    with pytest.raises(ElcrecError, match="kmeans_start is 'warm'; expected one of \\['continue', 'fresh'\\]"):
        build("iclrec", VOCAB, settings_for("iclrec", kmeans_start="warm"))


def test_the_centroids_to_continue_from_are_saved_with_the_model():
    model = build("iclrec", VOCAB, settings_for("iclrec"))
    assert "centroids" in model.state_dict()

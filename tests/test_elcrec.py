import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch

from elcrec.models.base import mean_pooled_users
from elcrec.models.kmeans import kmeans
from elcrec.models.registry import build


def elcrec(**overrides):
    torch.manual_seed(0)
    return build("elcrec", VOCAB, settings_for("elcrec", **overrides))


@pytest.mark.parametrize(
    ("ablation", "parts"),
    [
        ("B", {"next_item"}),
        ("B+ICL", {"next_item", "instance_cl", "intent_cl"}),
        ("B+ELCM", {"next_item", "cluster"}),
        ("ELCRec", {"next_item", "instance_cl", "intent_cl", "cluster"}),
    ],
)
def test_ablation_variants_select_the_losses(ablation, parts):
    model = elcrec(ablation=ablation)
    assert model.needs_views == ("instance_cl" in parts)
    losses = model.loss(tiny_batch())
    assert set(losses) == parts | {"total"}
    weights = {"next_item": 1.0, "instance_cl": 0.1, "intent_cl": 0.1, "cluster": 1.0}
    expected = sum(weights[name] * losses[name] for name in parts)
    assert losses["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_kmeans_initialises_the_centres_at_epoch_0_only():
    model = elcrec()
    context = epoch_context(epoch=0, seed=5)
    expected = torch.nn.functional.normalize(kmeans(mean_pooled_users(model.backbone, context), 3, seed=5), dim=1)
    model.on_epoch_start(context)
    assert torch.allclose(model.centres.data, expected)
    model.centres.data.mul_(3)
    model.on_epoch_start(epoch_context(epoch=1, seed=5))
    assert torch.allclose(model.centres.data, 3 * expected)


def test_the_epoch_0_kmeans_starts_afresh_unlike_iclrecs(monkeypatch):
    """ELCRec's one k-means has nothing to continue from: no start, whatever the centres hold."""
    import elcrec.models.elcrec as module

    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return kmeans(*args, **kwargs)

    monkeypatch.setattr(module, "kmeans", spy)
    elcrec().on_epoch_start(epoch_context(epoch=0, seed=5))
    assert len(calls) == 1 and calls[0].get("start") is None


def test_random_initialisation_skips_kmeans_and_the_step_normalises_centres():
    model = elcrec(centre_init="random")
    before = model.centres.data.clone()
    model.on_epoch_start(epoch_context())
    assert torch.equal(model.centres.data, before)
    model.centres.data.mul_(4)
    model.loss(tiny_batch())
    assert torch.allclose(model.centres.data.norm(dim=1), torch.ones(3))


def test_intent_cl_alone_trains_the_centres_in_b_plus_icl():
    model = elcrec(ablation="B+ICL")
    model.loss(tiny_batch())["intent_cl"].backward()
    assert model.centres.grad is not None and model.centres.grad.abs().sum() > 0


@pytest.mark.parametrize("fusion", ["shift", "concat"])
def test_fusion_modes_change_the_instance_loss(fusion):
    model = elcrec(fusion=fusion)
    model.eval()
    fused = model.loss(tiny_batch())["instance_cl"]
    plain = elcrec(fusion=fusion)
    plain.eval()
    plain.centres.data.zero_()  # zero centres: shift adds nothing, concat appends zeros
    plain.centres.data[:, 0] = 1e-12  # (kept finite for the normalisation)
    assert not torch.isclose(fused, plain.loss(tiny_batch())["instance_cl"])


@pytest.mark.parametrize(("key", "value"), [("ablation", "B+X"), ("fusion", "add"), ("centre_init", "zeros")])
def test_bad_choices_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        elcrec(**{key: value})


def test_cluster_loss_mode_paper_differs_from_code():
    code = elcrec(ablation="B+ELCM")
    code.eval()
    paper = elcrec(ablation="B+ELCM", cluster_loss="paper")
    paper.eval()
    assert code.loss(tiny_batch())["cluster"] > paper.loss(tiny_batch())["cluster"]

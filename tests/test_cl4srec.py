import pytest
import torch
from model_helpers import VOCAB, settings_for, tiny_batch

from elcrec.models.losses import flattened_info_nce, info_nce
from elcrec.models.registry import build


def test_views_are_flattened_over_all_positions():
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(6, 5, 4, generator=generator)  # two views of 3 users
    expected = info_nce(outputs[:3].reshape(3, 20), outputs[3:].reshape(3, 20), 1.0)
    assert flattened_info_nce(outputs, 1.0).item() == pytest.approx(expected.item())


def test_loss_is_next_item_plus_weighted_instance_cl():
    torch.manual_seed(0)
    model = build("cl4srec", VOCAB, settings_for("cl4srec", instance_weight=0.25))
    model.eval()  # no dropout: the parts can be recomputed
    losses = model.loss(tiny_batch())
    assert set(losses) == {"next_item", "instance_cl", "total"}
    expected = losses["next_item"] + 0.25 * losses["instance_cl"]
    assert losses["total"].item() == pytest.approx(expected.item())
    views = model.backbone(tiny_batch()["views"])
    assert losses["instance_cl"].item() == pytest.approx(flattened_info_nce(views, 1.0).item(), rel=1e-5)

"""Interface conformance of every registered model, and the shared helpers of models/base.py."""

import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch, tiny_sequences

from elcrec import ElcrecError
from elcrec.data.batches import TrainingData, training_batches
from elcrec.models.base import RecommenderModel, encode_in_blocks, mean_pooled_users
from elcrec.models.losses import next_item_bce, next_item_ce
from elcrec.models.registry import MODELS, build, model_class

model_class("sasrec")  # registers the built-in models
ALL_MODELS = sorted(MODELS)


def test_the_core_models_and_baselines_are_registered():
    assert {"sasrec", "cl4srec", "iclrec", "elcrec", "pop", "bprmf"} <= set(ALL_MODELS)


def training_batch(name: str) -> dict:
    """The tiny batch, or for a model trained on windows (GRU4Rec) the first batch of its own unit."""
    settings = settings_for(name)
    if settings["batch_unit"] != "windows":
        return tiny_batch()
    data = TrainingData.of(tiny_sequences().split(max_len=settings["max_len"]))
    generator = torch.Generator().manual_seed(0)
    unit = {"unit": "windows", "window": settings["window"], "negatives": settings["negatives"]}
    return next(training_batches(data, 8, generator, **unit))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_interface_conformance(name):
    torch.manual_seed(0)
    model = build(name, VOCAB, settings_for(name), n_users=20)
    assert isinstance(model, RecommenderModel) and model.name == name
    model.prepare(tiny_sequences())
    model.on_epoch_start(epoch_context())
    model.train()
    losses = model.loss(training_batch(name))
    assert "total" in losses and all(value.ndim == 0 and torch.isfinite(value) for value in losses.values())
    if any(True for _ in model.parameters()):
        losses["total"].backward()
    trained = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert trained == []  # every parameter takes part in the loss
    model.eval()
    assert model.score({"input": tiny_batch()["input"], "users": torch.arange(4)}).shape == (4, VOCAB)
    embeddings, intents = model.user_snapshot({"input": tiny_batch()["input"], "users": torch.arange(4)})
    assert embeddings.ndim == 2 and len(embeddings) == 4
    assert intents is None or (intents.shape == (4,) and int(intents.max()) < settings_for(name).get("clusters", 0))


def test_mean_pooled_users_is_eval_mode_and_restores_the_mode():
    model = build("sasrec", VOCAB, settings_for("sasrec"))
    model.train()
    context = epoch_context()
    first = mean_pooled_users(model.backbone, context)
    assert model.backbone.training
    assert torch.equal(first, mean_pooled_users(model.backbone, context))  # no dropout
    model.eval()
    assert torch.allclose(first, model.backbone(context.train_input).mean(dim=1), atol=1e-6)


def test_encode_in_blocks_equals_concatenating_the_blocks():
    inputs = torch.arange(23 * 3, dtype=torch.float32).view(23, 3)
    encoded = encode_in_blocks(lambda block: block.sum(dim=1, keepdim=True) * 2, inputs, 5)
    assert torch.equal(encoded, torch.cat([block.sum(dim=1, keepdim=True) * 2 for block in inputs.split(5)]))


def test_every_model_module_is_found_without_a_list():
    import pkgutil

    import elcrec.models as package
    from elcrec.models.registry import NOT_MODELS, registered

    modules = {module.name for module in pkgutil.iter_modules(package.__path__)} - NOT_MODELS
    classes = {cls.__module__.rsplit(".", 1)[1] for cls in MODELS.values()}
    assert modules == classes and len(registered()) == len(modules)  # one model per model module


@pytest.mark.parametrize("model", ["sasrec", "cl4srec", "iclrec", "elcrec", "s3rec", "dssrec"])
def test_every_sasrec_backbone_model_trains_with_the_chosen_next_item_loss(model):
    batch = tiny_batch()
    for kind in ("bce", "ce"):
        torch.manual_seed(0)
        built = build(model, VOCAB, settings_for(model, next_item_loss=kind)).eval()  # no dropout
        found = built.loss(batch)["next_item"]
        outputs = built.backbone(batch["input"])
        if kind == "ce":
            expected = next_item_ce(outputs, built.backbone.item_embedding.weight, batch)
        else:
            expected = next_item_bce(outputs, built.backbone.item_embedding, batch)
        assert found.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [("next_item_loss", "softmax", "next_item_loss is 'softmax'"), ("ce_negatives", 0, "ce_negatives is 0")],
)
def test_next_item_settings_are_checked_when_the_model_is_built(setting, value, message):
    with pytest.raises(ElcrecError, match=message):
        build("sasrec", VOCAB, settings_for("sasrec", **{setting: value}))

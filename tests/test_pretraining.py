"""pretraining.py: a pre-training writes its folder, resumes after a kill as if never stopped, and a
fine-tuning run starts from exactly its weights (the pre-training-only heads left out); a
pre-training of another model, vocabulary or pre-training setting is refused, naming what differs."""

import json

import pytest
import torch
from model_helpers import TINY, tiny_sequences

from elcrec import ElcrecError
from elcrec.models.base import PRETRAINING_HEADS, PretrainingData
from elcrec.pretraining import CHECKPOINT, PRETRAINED_FILE, Pretrainer, fine_tuning_start, pretrain
from elcrec.settings import model_defaults
from elcrec.training import Trainer


def attributes_of(vocab_size: int) -> dict[int, list[int]]:
    return {item: [1 + item % 4, 5 + item % 2] for item in range(1, vocab_size - 1)}


@pytest.fixture(scope="module")
def sequences():
    return tiny_sequences(users=16)


@pytest.fixture(scope="module")
def data(sequences):
    return PretrainingData.of(sequences, TINY["max_len"], attributes_of(sequences.vocab_size))


def s3rec_settings(**overrides) -> dict:
    defaults = model_defaults("s3rec")
    tiny = {key: value for key, value in TINY.items() if key in defaults}
    return defaults | tiny | {"pretrain_epochs": 3, "pretrain_batch_size": 16, "device": "cpu"} | overrides


def test_pretraining_writes_its_folder(data, tmp_path):
    record = pretrain(data, "s3rec", s3rec_settings(), tmp_path, {"dataset": "tiny", "data_sha256": "abc"})
    assert record["epochs_run"] == 3 and record["pretraining"] == "default" and record["pretraining_seconds"] > 0
    assert set(record["final_losses"]) == {"loss_aap", "loss_mip", "loss_map", "loss_sp", "loss_total"}
    assert json.loads((tmp_path / "metrics.json").read_text())["identity"]["aap_weight"] == 0.2
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss_aap,") and len(history) == 4
    saved = torch.load(tmp_path / PRETRAINED_FILE, weights_only=True)
    assert any(key.startswith(PRETRAINING_HEADS) for key in saved["state"])
    assert not (tmp_path / CHECKPOINT).exists()


def test_a_killed_pretraining_resumes_to_the_same_weights(data, tmp_path, monkeypatch):
    settings = s3rec_settings()
    pretrain(data, "s3rec", settings, tmp_path / "straight", {})
    original = Pretrainer.pretrain_epoch

    def killed_at_epoch_2(self):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Pretrainer, "pretrain_epoch", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain(data, "s3rec", settings, tmp_path / "resumed", {})
    assert torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)["epoch"] == 2
    monkeypatch.setattr(Pretrainer, "pretrain_epoch", original)
    pretrain(data, "s3rec", settings, tmp_path / "resumed", {})
    straight = torch.load(tmp_path / "straight" / PRETRAINED_FILE, weights_only=True)["state"]
    resumed = torch.load(tmp_path / "resumed" / PRETRAINED_FILE, weights_only=True)["state"]
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def test_a_checkpoint_of_another_pretraining_is_refused(data, tmp_path, monkeypatch):
    original = Pretrainer.pretrain_epoch

    def one_epoch_then_killed(self):
        if self.epoch >= 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Pretrainer, "pretrain_epoch", one_epoch_then_killed)
    with pytest.raises(KeyboardInterrupt):
        pretrain(data, "s3rec", s3rec_settings(), tmp_path, {})
    monkeypatch.setattr(Pretrainer, "pretrain_epoch", original)
    with pytest.raises(ElcrecError, match="checkpoint of a different pre-training"):
        pretrain(data, "s3rec", s3rec_settings(mask_p=0.3), tmp_path, {})


def test_fine_tuning_starts_from_exactly_the_pretrained_weights(data, sequences, tmp_path):
    settings = s3rec_settings()
    pretrain(data, "s3rec", settings, tmp_path, {"dataset": "tiny"})
    state, record = fine_tuning_start(tmp_path / PRETRAINED_FILE, "s3rec", settings, sequences.vocab_size)
    assert record["epochs_run"] == 3 and record["pretraining_seconds"] > 0 and len(record["sha256"]) == 64
    saved = torch.load(tmp_path / PRETRAINED_FILE, weights_only=True)["state"]
    assert not any(key.startswith(PRETRAINING_HEADS) for key in state)
    assert set(state) == {key for key in saved if not key.startswith(PRETRAINING_HEADS)}
    # fine-tuning settings may differ (its own epochs, lr, seed): they are not the pre-training's
    trainer = Trainer(sequences.split(max_len=TINY["max_len"]), "s3rec", settings | {"lr": 0.01}, 7, state)
    started = trainer.model.state_dict()
    assert started.keys() == state.keys()
    assert all(torch.equal(started[key], saved[key]) for key in state)


def test_a_pretraining_of_other_settings_model_or_data_is_refused(data, sequences, tmp_path):
    pretrain(data, "s3rec", s3rec_settings(), tmp_path, {})
    path = tmp_path / PRETRAINED_FILE
    with pytest.raises(ElcrecError, match="aap_weight: 0.2 there, 0 here"):
        fine_tuning_start(path, "s3rec", s3rec_settings(aap_weight=0), sequences.vocab_size)
    with pytest.raises(ElcrecError, match="vocabulary of"):
        fine_tuning_start(path, "s3rec", s3rec_settings(), sequences.vocab_size + 1)
    with pytest.raises(ElcrecError, match="a pre-training of 's3rec', not of 'sasrec'"):
        fine_tuning_start(path, "sasrec", s3rec_settings(), sequences.vocab_size)
    with pytest.raises(ElcrecError, match="not found"):
        fine_tuning_start(tmp_path / "missing.pt", "s3rec", s3rec_settings(), sequences.vocab_size)


def fixture_beauty_data() -> PretrainingData:
    """The smoke Beauty fixture with its attributes, as rule import_pretrained reads it."""
    from conftest import FIXTURES

    from elcrec.data.attributes import read_item2attributes
    from elcrec.data.sequences import SequenceData

    sequences = SequenceData.load(FIXTURES / "benchmark" / "Beauty.txt")
    items = set(range(1, sequences.max_item_id + 1))
    attributes = read_item2attributes(FIXTURES / "benchmark" / "Beauty_item2attributes.json", items)
    return PretrainingData.of(sequences, 50, attributes, "beauty")


def test_an_official_model_is_imported_as_the_pretraining_official_and_fine_tuned_from(tmp_path):
    from conftest import FIXTURES

    from elcrec.models.reference import convert_s3rec_state
    from elcrec.pretraining import OFFICIAL, import_official

    official = FIXTURES / "benchmark" / "S3Rec-Beauty-epochs-150.pt"  # official layout, fixture-sized
    data = fixture_beauty_data()
    settings = model_defaults("s3rec") | {"pretraining": OFFICIAL}
    record = import_official(official, data, "s3rec", settings, tmp_path, {"dataset": "beauty"})
    assert record["imported_from"]["file"] == official.name and record["pretraining"] == OFFICIAL
    saved = torch.load(tmp_path / PRETRAINED_FILE, weights_only=True)
    expected = convert_s3rec_state(torch.load(official, weights_only=True))
    assert set(saved["state"]) == set(expected)  # every weight, the heads too, through the name map
    assert all(torch.equal(saved["state"][name], value) for name, value in expected.items())
    state, provenance = fine_tuning_start(tmp_path / PRETRAINED_FILE, "s3rec", settings, data.vocab_size)
    assert not any(name.startswith(PRETRAINING_HEADS) for name in state)
    assert provenance["pretraining"] == OFFICIAL and provenance["pretraining_seconds"] is None


def test_an_official_model_that_does_not_fit_is_refused_naming_the_file(tmp_path):
    from conftest import FIXTURES

    from elcrec.pretraining import OFFICIAL, import_official

    official = FIXTURES / "benchmark" / "S3Rec-Beauty-epochs-150.pt"
    settings = model_defaults("s3rec") | {"pretraining": OFFICIAL, "layers": 1}  # the file has 2 layers
    with pytest.raises(ElcrecError, match=r"S3Rec-Beauty-epochs-150.pt: does not fit s3rec .*Unexpected key"):
        import_official(official, fixture_beauty_data(), "s3rec", settings, tmp_path, {})
    with pytest.raises(ElcrecError, match="an imported pre-training is named 'official'"):
        import_official(official, fixture_beauty_data(), "s3rec", model_defaults("s3rec"), tmp_path, {})
    assert not (tmp_path / PRETRAINED_FILE).exists()

"""official/iocrec.py: our IOCRec against the official code's numbers (tests/data/official/iocrec_train,
made by workflow/scripts/official/iocrec_train.py): a training step of the official model's seeded
initialisation on 8 prefix examples and their two official views, and the scores of 8 users."""

import pytest
import torch

from elcrec.models import iocrec as our_iocrec
from elcrec.official import OFFICIAL_CODE
from elcrec.official import iocrec as official_iocrec
from elcrec.official.common import load_fixture


@pytest.fixture(scope="module")
def fixture():
    torch.set_num_threads(1)
    return load_fixture(official_iocrec.CHECK["fixture"])


def test_the_training_step_and_the_scores_equal_the_official_code_s(fixture):
    arrays, record = fixture
    differences = official_iocrec.check(arrays, record)
    assert differences["within_tolerance"]
    assert set(differences["losses"]) == {"next_item", "intent_cl", "total"}
    assert differences["gradients"] == 72 == len(record["parameter_names"])
    assert differences["largest_loss_share"] < 1e-5 and differences["scores"]["within"]
    assert differences["losses"]["intent_cl"]["official"] == pytest.approx(85.9417, abs=1e-4)


def test_the_fixture_is_the_pinned_official_code_s(fixture):
    arrays, record = fixture
    assert f"{record['repository']} @ {record['commit']}" == OFFICIAL_CODE["iocrec"]
    assert arrays["scores"].shape == (8, official_iocrec.ITEMS + 2)  # every embedding row, padding and mask too
    assert all(official_iocrec.rename(name) for name in record["parameter_names"])


def test_the_batch_is_laid_out_as_our_prefix_batches_lay_one_out(fixture):
    arrays, _ = fixture
    batch = official_iocrec.our_batch(arrays)
    lengths = torch.from_numpy(arrays["batch/seq_len"])
    assert torch.equal((batch["input"] > 0).sum(1), lengths)
    assert torch.equal(batch["target"][:, -1], torch.from_numpy(arrays["batch/target"]))
    ids, moved_lengths = our_iocrec.right_padded(batch["views"])  # what IOCRec._views takes with views: protocol
    official_views = torch.cat([torch.from_numpy(arrays[f"batch/aug_seq_{view}"]) for view in (1, 2)])
    assert torch.equal(ids, official_views)
    assert moved_lengths.tolist() == [*arrays["batch/aug_len_1"].tolist(), *arrays["batch/aug_len_2"].tolist()]


@pytest.mark.parametrize("function", ["max_intent_cross_entropy", "intent_contrastive_loss"])
def test_a_one_line_change_to_our_loss_is_caught(fixture, function, monkeypatch):
    arrays, record = fixture
    original = getattr(our_iocrec, function)
    monkeypatch.setattr(our_iocrec, function, lambda *args: 1.001 * original(*args))
    differences = official_iocrec.check(arrays, record)
    assert not differences["within_tolerance"]
    assert differences["largest_loss_share"] == pytest.approx(1e-3, rel=0.02)

"""official/bert4rec.py: our BERT4Rec against FeiSun/BERT4Rec (fixture tests/data/official/bert4rec_train,
made by workflow/scripts/official/bert4rec_train.py)."""

import types

from torch.nn import functional

from elcrec.models import bert4rec as our_bert4rec
from elcrec.official import bert4rec as official_bert4rec
from elcrec.official.common import load_fixture


def test_the_cloze_loss_every_gradient_and_the_scores_equal_the_official_code_s():
    fixture, record = load_fixture(official_bert4rec.CHECK["fixture"])
    assert record["commit"] == "615eaf2004abecda487a38d5b0c72f3dcfcae5b3"
    found = official_bert4rec.check(fixture, record)
    assert found["within_tolerance"], found
    assert set(found["losses"]) == {"cloze", "total"} and found["gradients"] == 41
    assert found["scores"]["within"] and found["largest_loss_share"] < 1e-5
    assert found["token_type_0"]["unused_rows_and_type_1"] == 0.0


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch):
    fixture, record = load_fixture(official_bert4rec.CHECK["fixture"])

    def scaled(logits, labels):
        return functional.cross_entropy(logits, labels) * 1.001

    changed = types.SimpleNamespace(cross_entropy=scaled, gelu=functional.gelu)
    monkeypatch.setattr(our_bert4rec, "functional", changed)
    found = official_bert4rec.check(fixture, record)
    assert not found["within_tolerance"] and found["largest_loss_share"] > 5e-4

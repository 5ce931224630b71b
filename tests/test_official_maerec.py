"""official/maerec.py: our MAERec against the official code's numbers (tests/data/official/maerec_train,
made by workflow/scripts/official/maerec_train.py): a training step of the official model's seeded
initialisation on a tiny item graph with every official random draw replayed, and the scores of 8
test users over every item."""

import pytest
import torch

import elcrec.models.maerec as our_maerec
from elcrec.official import OFFICIAL_CODE
from elcrec.official import maerec as official_maerec
from elcrec.official.common import load_fixture

LOSSES = {"next_item", "reconstruction", "regularisation", "mask", "total"}


@pytest.fixture(scope="module")
def fixture():
    torch.set_num_threads(1)
    return load_fixture(official_maerec.CHECK["fixture"])


def test_the_training_step_and_the_scores_equal_the_official_code_s(fixture):
    arrays, record = fixture
    differences = official_maerec.check(arrays, record)
    assert differences["within_tolerance"]
    assert set(differences["losses"]) == LOSSES
    assert differences["gradients"] == 42 == len(record["parameter_names"])
    assert differences["largest_loss_share"] < 1e-5 and differences["scores"]["within"]
    assert differences["losses"]["reconstruction"]["official"] == pytest.approx(-4.04947, abs=1e-5)
    assert differences["losses"]["mask"]["official"] == pytest.approx(-0.420457, abs=1e-6)
    # the switched-off rows: items with no edge but their loop, which the official sum zeroed
    switched_off = differences["switched_off"]
    assert switched_off["item_embedding rows"] == [11, 18, 38, 40]
    assert switched_off["ours against the official gradient without the masker loss"]["within"]


def test_the_switched_off_rows_are_the_only_difference_and_the_switch_is_needed(fixture):
    arrays, record = fixture
    differences = official_maerec.differences(official_maerec.with_official_weights(arrays, record), arrays, False)
    assert not differences["within_tolerance"]
    assert differences["largest_loss_share"] < 1e-5 and differences["scores"]["within"]
    assert differences["largest_gradient"]["parameter"] == "item_embedding"
    assert differences["largest_gradient"]["difference"] == pytest.approx(0.2383, abs=1e-4)  # row 38, ours


def test_the_fixture_is_the_pinned_official_code_s_and_our_graph_is_its_graph(fixture):
    arrays, record = fixture
    assert f"{record['repository']} @ {record['commit']}" == OFFICIAL_CODE["maerec"]
    assert arrays["scores"].shape == (8, record["official_args"]["item"] - 1)  # the real items 1..40
    assert all(official_maerec.rename(name) for name in record["parameter_names"])
    model = official_maerec.with_official_weights(arrays, record)
    official = torch.from_numpy(arrays["graph/indices"])
    size = model.vocab_size
    ours = model.graph_rows * size + model.graph_cols
    order = torch.argsort(official[0] * size + official[1])
    assert torch.equal(ours, (official[0] * size + official[1])[order])  # the same edges, the mask id none
    values = torch.from_numpy(arrays["graph/values"])[order]
    assert torch.allclose(model.graph_values, values, rtol=1e-6)  # D^-1/2 (A + I) D^-1/2


def test_our_step_asks_for_exactly_the_official_draws(fixture):
    arrays, record = fixture
    model = official_maerec.with_official_weights(arrays, record)
    draws = official_maerec.official_draws(model, arrays)
    assert [kind for kind, _, _ in draws] == ["rand"] * 4 + ["randperm"] * 3 + ["randint"]
    with official_maerec.replayed(model, arrays):
        model.loss(official_maerec.our_batch(arrays))
    masked = model.masked_edges[:, 0] * model.vocab_size + model.masked_edges[:, 1]
    official = torch.from_numpy(arrays["masker/masked_edge"])
    assert set(masked.tolist()) == set((official[:, 0] * model.vocab_size + official[:, 1]).tolist())
    rows, cols, values = model.encoder_graph
    adj = torch.from_numpy(arrays["masker/encoder_adj_indices"])
    assert set((rows * model.vocab_size + cols).tolist()) == set((adj[0] * model.vocab_size + adj[1]).tolist())
    assert our_maerec.torch is torch  # the replay is undone


@pytest.mark.parametrize(
    ("function", "changed_loss"),
    [("reconstruction_loss", "reconstruction"), ("next_item_bce", "next_item"), ("seed_scores", "mask")],
)
def test_a_one_line_change_to_our_loss_is_caught(fixture, function, changed_loss, monkeypatch):
    arrays, record = fixture
    original = getattr(our_maerec, function)
    monkeypatch.setattr(our_maerec, function, lambda *args: 1.001 * original(*args))
    differences = official_maerec.check(arrays, record)
    assert not differences["within_tolerance"]
    worst = max(differences["losses"], key=lambda name: differences["losses"][name]["share"])
    assert worst in {changed_loss, "total"} and differences["largest_loss_share"] > 1e-4

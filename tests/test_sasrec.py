import math

import pytest
import torch

from elcrec import ElcrecError
from elcrec.models.losses import next_item_bce
from elcrec.models.registry import MODELS, build

SETTINGS = {"hidden_size": 8, "heads": 2, "inner_size": 16, "layers": 1, "max_len": 5}


def test_bce_by_hand():
    embedding = torch.nn.Embedding(4, 2)
    embedding.weight.data = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    outputs = torch.tensor([[[9.0, 9.0], [2.0, 0.0], [0.0, 1.0]]])  # position 0 is padding
    batch = {"target": torch.tensor([[0, 1, 3]]), "negative": torch.tensor([[0, 2, 1]])}
    loss = next_item_bce(outputs, embedding, batch)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # position 1: pos logit 2, neg logit 0; position 2: pos logit 1, neg logit 0
    expected = (-math.log(sigmoid(2)) - math.log(0.5) - math.log(sigmoid(1)) - math.log(0.5)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(ElcrecError, match="registered models: \\[.*'sasrec'"):
        build("sasrecc", 12, SETTINGS)
    assert "sasrec" in MODELS

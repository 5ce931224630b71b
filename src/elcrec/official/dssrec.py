"""DSSRec's pre-training step and fine-tuning scores against the re-implementation the paper cites
(abis330/DSSRec; DSSRec has no official code): our model with the re-implementation's seeded
initialisation (in the fixture, `weight/<name>`) on the fixture's batch of its PretrainDataset (its
windows, split points, inputs, reversed futures and next items), made by
workflow/scripts/official/dssrec_pretrain.py on a tiny synthetic sequence set.

Two departures that models/dssrec.py names are switched off for the comparison (`SWITCHES`):
- the feed-forward layer: ours is the backbone's (inner size 256, GELU); the re-implementation's is
  PointWiseFeedForward (modules.py:121-141), two width-D Conv1d of kernel 1 with a ReLU after each.
  Our model is built with inner_size = hidden_size (the convolutions' weights [D, D, 1] are our
  Linear weights [D, D]) and each block's FeedForward is given that ReLU-after-both forward;
- padding kept out of the position softmax: the re-implementation's p_i (modules.py:232-251) weights
  every position, padding included; our IntentLayer.position_weights is called with every position
  counted as an item.
The confidence filter needs no switch: the batch is a full one of pre_batch_size (8, so the
re-implementation's floor(lambda_ pre_batch_size K) is our floor(confidence B K) = 16) and the
fixture records no tie at the threshold. Dropout is off (eval mode), so encoding the inputs and the
futures in one pass (ours) or two is the same.
"""

from __future__ import annotations

import re
import types

import numpy as np
import torch

from elcrec.official.common import compare, official_gradients, official_state

CHECK = {
    "fixture": "dssrec_pretrain",
    "weights": None,
    "weights_sha256": None,
    "compared": (
        "pre-training on the re-implementation's seeded initialisation (tiny: 42 items, hidden 16, 2 layers, "
        "max_len 10, K 4), one batch of 8 of its PretrainDataset on synthetic sequences: seq2item, seq2seq with "
        "the confidence filter, the total; every gradient, intent layer included; the fine-tuning scores of a "
        "test batch of 8 over all 42 ids"
    ),
    "departures": (
        "switched off: our feed-forward (inner 256, GELU) replaced by the re-implementation's (width D, ReLU "
        "after both convolutions; modules.py:121-141); padding counted in the position softmax as the "
        "re-implementation does (modules.py:232-251)"
    ),
}
LOSSES = {"seq2item": "loss/seq2item", "seq2seq": "loss/seq2seq", "total": "loss/total"}
# the re-implementation's names -> ours, beyond the ICLRec-layout encoder names (models/reference.py)
_CONVOLUTION = re.compile(r"^item_encoder\.layer\.(\d+)\.intermediate\.conv1d_([12])\.(weight|bias)$")
_PROTOTYPE = re.compile(r"^disentangled_encoder\.prototypes\.(\d+)$")
_INTENT_LAYER = {
    "disentangled_encoder.b_prime": "query_bias",
    "disentangled_encoder.alphas": "position_bias",
    "disentangled_encoder.beta_input_seq": "input_bias",
    "disentangled_encoder.beta_label_seq": "future_bias",
    "disentangled_encoder.w.weight": "key_transform.weight",
    "disentangled_encoder.w.bias": "key_transform.bias",
}
_LAYER_NORMS = ["state_norm", "prototype_norm", "key_norm", "query_norm", "output_norm"]  # layernorm1..5


def ours(name: str) -> str:
    """Our parameter name for one of the re-implementation's (every prototype -> the one [K, D] table)."""
    from elcrec.models.reference import encoder_name

    if match := _CONVOLUTION.match(name):
        layer, which, kind = match.groups()
        return f"backbone.blocks.{layer}.feed_forward.{'expand' if which == '1' else 'contract'}.{kind}"
    if _PROTOTYPE.match(name):
        return "pretraining_heads.prototypes"
    if name in _INTENT_LAYER:
        return f"pretraining_heads.{_INTENT_LAYER[name]}"
    if match := re.match(r"^disentangled_encoder\.layernorm([1-5])\.(weight|bias)$", name):
        return f"pretraining_heads.{_LAYER_NORMS[int(match[1]) - 1]}.{match[2]}"
    encoder = encoder_name(name)
    if encoder is None:
        raise KeyError(f"dssrec: no name of ours for the re-implementation's {name!r}")
    return f"backbone.{encoder}"


def converted(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The re-implementation's tensors (weights or gradients, by its names) under ours: the K
    prototype vectors stacked in order, the convolutions' [D, D, 1] as [D, D]."""
    result, prototypes = {}, {}
    for name, tensor in tensors.items():
        if match := _PROTOTYPE.match(name):
            prototypes[int(match[1])] = tensor
        else:
            result[ours(name)] = tensor.squeeze(-1) if _CONVOLUTION.match(name) else tensor
    result[ours("disentangled_encoder.prototypes.0")] = torch.stack([prototypes[k] for k in sorted(prototypes)])
    return result


def _relu_feed_forward(self, states: torch.Tensor) -> torch.Tensor:
    """The re-implementation's PointWiseFeedForward (modules.py:130-141) on our FeedForward's layers."""
    hidden = torch.relu(self.contract(torch.relu(self.expand(states))))
    return self.norm(self.dropout(hidden) + states)


def official_feed_forward(model: torch.nn.Module) -> None:
    """Every block's FeedForward given the re-implementation's forward (ReLU after both layers)."""
    for block in model.backbone.blocks:
        block.feed_forward.forward = types.MethodType(_relu_feed_forward, block.feed_forward)


def padding_in_position_softmax(model: torch.nn.Module) -> None:
    """The intent layer's position softmax over every position, padding included."""
    heads = model.pretraining_heads
    position_weights = heads.position_weights
    heads.position_weights = lambda states, is_item: position_weights(states, torch.ones_like(is_item))


# the named departures of models/dssrec.py the comparison switches off (module docstring)
SWITCHES = {"feed_forward": official_feed_forward, "position_padding": padding_in_position_softmax}


def settings(record: dict) -> dict:
    """Our settings of the re-implementation's arguments (the fixture's record)."""
    from elcrec.settings import model_defaults

    theirs = record["settings"]
    return model_defaults("dssrec") | {
        "hidden_size": theirs["hidden_size"],
        "inner_size": theirs["hidden_size"],  # its feed-forward is width D (switched off, see above)
        "layers": theirs["num_hidden_layers"],
        "heads": theirs["num_attention_heads"],
        "max_len": theirs["max_seq_length"],
        "dropout": theirs["hidden_dropout_prob"],
        "attention_dropout": theirs["attention_probs_dropout_prob"],
        "init_std": theirs["initializer_range"],
        "intents": theirs["num_intents"],
        "confidence": theirs["lambda_"],
        "s2i_weight": theirs["s2i_weight"],
        "s2s_weight": theirs["s2s_weight"],
        "pretrain_batch_size": theirs["pre_batch_size"],
        "pretrain_seed": theirs["seed"],
    }


def with_official_weights(fixture: dict[str, np.ndarray], record: dict, switched_off=tuple(SWITCHES)):
    """Our DSSRec on the fixture's sequences, its pre-training heads prepared, the re-implementation's
    weights loaded strictly, the departures `switched_off` names (all by default) switched off."""
    from elcrec.data.sequences import SequenceData
    from elcrec.models.base import PretrainingData
    from elcrec.models.registry import build

    offsets = fixture["sequence_offsets"]
    sequences = SequenceData.from_sequences(
        [fixture["sequences"][start:end] for start, end in zip(offsets[:-1], offsets[1:], strict=True)]
    )
    chosen = settings(record)
    if sequences.vocab_size != record["settings"]["item_size"]:
        raise ValueError(f"dssrec: vocabulary {sequences.vocab_size}, the fixture's {record['settings']['item_size']}")
    torch.manual_seed(0)
    model = build("dssrec", sequences.vocab_size, chosen)
    model.prepare_pretraining(PretrainingData.of(sequences, chosen["max_len"], None))
    model.load_state_dict(converted(official_state(fixture, lambda name: name)), strict=True)
    for departure in switched_off:
        SWITCHES[departure](model)
    return model


def pretraining_batch(fixture: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The re-implementation's batch (inp_pos_items, label_pos_items: the future reversed and left-padded,
    next_item) in our layout."""
    return {
        "input": torch.from_numpy(fixture["inp_pos_items"]),
        "future": torch.from_numpy(fixture["label_pos_items"]),
        "next": torch.from_numpy(fixture["next_item"][:, 0]),
    }


def differences(model: torch.nn.Module, fixture: dict[str, np.ndarray]) -> dict:
    """Our pre-training losses, gradients (after our total's backward) and fine-tuning scores in eval
    mode, beside the fixture's."""
    model.eval().zero_grad()
    with torch.no_grad():
        inputs = torch.from_numpy(fixture["score_input_ids"])
        scores = model.score({"users": torch.from_numpy(fixture["score_user_ids"]), "input": inputs})
    official = {name: float(fixture[key]) for name, key in LOSSES.items()}
    raw = official_gradients(fixture, lambda name: name)
    values = converted({name: tensor for name, (_, tensor) in raw.items()})
    gradients = {ours(name): (rows, values[ours(name)]) for name, (rows, _) in raw.items()}
    return compare(
        model.pretraining_loss(pretraining_batch(fixture)), official, model, gradients, (scores, fixture["scores"])
    )


def check(fixture: dict[str, np.ndarray], record: dict, weights=None, sequences=None, attributes=None) -> dict:
    return differences(with_official_weights(fixture, record), fixture)

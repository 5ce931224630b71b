"""Import the authors' released ELCRec checkpoints into our modules (yueliu1999/ELCRec,
`src/output/ELCRec-<Dataset>-1.pt`; rule `reference` fetches, imports and evaluates them), and the
official S3-Rec pre-trained models (aHuiWang/CIKM2020-S3Rec `reproduce/<Dataset>-epochs-150.pt`;
rule `import_pretrained`), whose encoder has the same layout.

Their layout follows the ICLRec code: `item_encoder.layer.N.attention.{query,key,value,dense,
LayerNorm}`, `...intermediate.{dense_1,dense_2,LayerNorm}`, `item_embeddings`,
`position_embeddings`, `LayerNorm` and `cluster_centers`. Only names change; tensors are copied
as they are (both use torch's Linear layout).
"""

from __future__ import annotations

import re

import torch

from elcrec import ElcrecError

_RENAMES = [
    (r"^item_embeddings\.", "item_embedding."),
    (r"^position_embeddings\.", "position_embedding."),
    (r"^LayerNorm\.", "embedding_norm."),
    (r"^item_encoder\.layer\.(\d+)\.attention\.dense\.", r"blocks.\1.attention.output."),
    (r"^item_encoder\.layer\.(\d+)\.attention\.LayerNorm\.", r"blocks.\1.attention.norm."),
    (r"^item_encoder\.layer\.(\d+)\.attention\.(query|key|value)\.", r"blocks.\1.attention.\2."),
    (r"^item_encoder\.layer\.(\d+)\.intermediate\.dense_1\.", r"blocks.\1.feed_forward.expand."),
    (r"^item_encoder\.layer\.(\d+)\.intermediate\.dense_2\.", r"blocks.\1.feed_forward.contract."),
    (r"^item_encoder\.layer\.(\d+)\.intermediate\.LayerNorm\.", r"blocks.\1.feed_forward.norm."),
]
CENTRES_KEY = "cluster_centers"


def _renamed(key: str, rules: list[tuple[str, str]]) -> str | None:
    for pattern, replacement in rules:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return None


def encoder_name(key: str) -> str | None:
    """Our backbone's name for a parameter of the ICLRec-layout encoder, or None."""
    return _renamed(key, _RENAMES)


def convert_reference_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """-> (backbone state dict in our names, cluster centres or None)."""
    backbone, centres = {}, state.get(CENTRES_KEY)
    for key, tensor in state.items():
        if key == CENTRES_KEY:
            continue
        renamed = encoder_name(key)
        if renamed is None:
            raise ElcrecError(f"reference checkpoint: unexpected key {key!r} (shape {tuple(tensor.shape)})")
        backbone[renamed] = tensor
    return backbone, centres


# the official S3-Rec model's pre-training heads and attribute table -> ours (models/s3rec.py)
_S3REC_HEADS = [
    (r"^(aap|mip|map|sp)_norm\.", r"pretraining_heads.\1_norm."),
    (r"^attribute_embeddings\.", "pretraining_heads.attribute_embedding."),
]


def s3rec_name(key: str) -> str | None:
    """Our S3Rec's name for a parameter of the official S3-Rec model: the encoder under `backbone.`
    as the ELCRec checkpoints' (the ICLRec layout), the four heads and the attribute table under
    `pretraining_heads`; None for a key of neither."""
    encoder = encoder_name(key)
    return _renamed(key, _S3REC_HEADS) or (f"backbone.{encoder}" if encoder else None)


def convert_s3rec_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official S3-Rec state dict in our S3Rec's names (`s3rec_name`); unknown keys are errors."""
    converted = {}
    for key, tensor in state.items():
        renamed = s3rec_name(key)
        if renamed is None:
            raise ElcrecError(f"S3-Rec checkpoint: unexpected key {key!r} (shape {tuple(tensor.shape)})")
        converted[renamed] = tensor
    return converted


def reference_layout(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Sizes read off a reference state dict: vocabulary, hidden size, layers, max length, clusters."""
    layers = {int(match.group(1)) for key in state if (match := re.match(r"item_encoder\.layer\.(\d+)\.", key))}
    vocab_size, hidden_size = state["item_embeddings.weight"].shape
    centres = state.get(CENTRES_KEY)
    return {
        "vocab_size": int(vocab_size),
        "hidden_size": int(hidden_size),
        "layers": len(layers),
        "max_len": int(state["position_embeddings.weight"].shape[0]),
        "clusters": int(centres.shape[0]) if centres is not None else 0,
    }

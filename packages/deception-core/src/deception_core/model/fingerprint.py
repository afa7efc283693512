"""A model's fingerprint: what a dataset records so that datasets of different models are never mixed.

A model id alone does not say which model it was: ``./model`` or a re-uploaded hub repository can
hold another network under the same name. Every dataset therefore records, under
``meta["model"]["fingerprint"]``, the depth and width, a sha256 of the architecture settings of the
model's config, and a sha256 of the weights' metadata (every parameter's name and shape, the dtype
left out since it is chosen at load time). ``deception analyze --train-from/--control`` and
``deception merge`` compare them before any work (`mismatch`).

What it cannot tell apart: two checkpoints of one architecture (a model and its fine-tune) have the
same names and shapes; only their ids differ, and the ids are compared too.

Datasets written before fingerprints existed record only the id, depth and width; those are
compared, and the hashes only among the datasets that have them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from deception_core.base.types import JSONObject

if TYPE_CHECKING:
    from transformers import PreTrainedModel

FINGERPRINT_VERSION = 1
#: config keys that fix the network's shape and arithmetic (not paths, dtypes or library versions)
ARCHITECTURE_KEYS = (
    "model_type", "vocab_size", "hidden_size", "n_embd", "num_hidden_layers", "n_layer", "intermediate_size",
    "num_attention_heads", "n_head", "num_key_value_heads", "head_dim", "max_position_embeddings",
    "n_positions", "rope_theta", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "hidden_act",
    "tie_word_embeddings", "sliding_window", "attention_bias",
)


def _sha256(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def model_fingerprint(hf_model: PreTrainedModel) -> JSONObject:
    """The fingerprint of a loaded Hugging Face model (see the module docstring)."""
    config = hf_model.config.to_dict()
    nested = config.get("text_config")
    text = nested if isinstance(nested, dict) else config
    architecture = {key: text[key] for key in ARCHITECTURE_KEYS if key in text}
    shapes = sorted((name, list(tensor.shape)) for name, tensor in hf_model.state_dict().items())
    n_layers = text.get("num_hidden_layers", text.get("n_layer"))
    d_model = text.get("hidden_size", text.get("n_embd"))
    return {
        "version": FINGERPRINT_VERSION,
        "n_layers": n_layers,
        "d_model": d_model,
        "config_sha256": _sha256(architecture),
        "weights_sha256": _sha256(shapes),
        "n_parameters": int(sum(int(parameter.numel()) for parameter in hf_model.parameters())),  # tied: once
    }


def _facts(meta: Mapping[str, object]) -> dict[str, object]:
    model = meta.get("model") if isinstance(meta.get("model"), Mapping) else {}
    assert isinstance(model, Mapping)
    printed = model.get("fingerprint") if isinstance(model.get("fingerprint"), Mapping) else {}
    assert isinstance(printed, Mapping)
    return {
        "model id": model.get("id"),
        "layer count": printed.get("n_layers", model.get("n_layers")),
        "hidden size": printed.get("d_model", model.get("d_model")),
        "config hash": printed.get("config_sha256"),
        "weights hash": printed.get("weights_sha256"),
    }


def has_fingerprint(meta: Mapping[str, object]) -> bool:
    return _facts(meta)["weights hash"] is not None


def mismatch(metas: Mapping[str, Mapping[str, object]]) -> str | None:
    """None when every dataset (name -> its meta) comes from the same model as far as they record;
    else what differs, per dataset."""
    facts = {name: _facts(meta) for name, meta in metas.items()}
    for what in ("model id", "layer count", "hidden size", "config hash", "weights hash"):
        known = {name: f[what] for name, f in facts.items() if f[what] is not None}
        if len({json.dumps(v, sort_keys=True, default=str) for v in known.values()}) > 1:
            shown = "; ".join(f"{name}: {str(value)[:16]}" for name, value in known.items())
            return f"{what} ({shown})"
    return None


def unverified(metas: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The datasets written before fingerprints (only id, depth and width could be compared)."""
    return [name for name, meta in metas.items() if not has_fingerprint(meta)]

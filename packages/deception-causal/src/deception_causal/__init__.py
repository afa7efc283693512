"""deception_causal: patching, directional ablation, steering during generation, and faithfulness.

The measures work on a Hugging Face causal LM (``Model.hf_model`` of `deception_core.load_model`),
token ids and numpy directions, without a run or a dataset::

    from deception_causal import ablation_change, random_unit_directions, steering_curve

    steering_curve(hf_model, prompt_ids, reply_ids, layer, unit, alphas)  # mean log p(reply) per alpha

The measures (`reply_logprobs`, `reply_logprob_rows`, `steering_curve`, `ablation_change`,
`prompt_states`, `patch_deltas`, `patched_reply_logprob`, `centred_ablation`); the statistics
(`random_unit_directions`, `bootstrap_ci`, `compare_with_null`, `correlation`, `per_sample_slopes`,
`steerability`, `difference_of_means`); the four causal tests the runner registers (`Steering`,
`DirectionalAblation`, `ActivationPatching`, `Faithfulness`) and their `CausalSettings`.

Importing this package is light; torch is imported with the modules that intervene on a model.
The result format of every ``causal_<test>.json`` is documented by the JSON Schema returned by
`schema_path()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from deception_core import JSONObject, lazy_exports

if TYPE_CHECKING:
    from deception_causal.ablation import DirectionalAblation
    from deception_causal.common import CausalSettings
    from deception_causal.direction import difference_of_means
    from deception_causal.faithfulness import Faithfulness
    from deception_causal.measures import (
        ablation_change,
        centred_ablation,
        patch_deltas,
        patched_reply_logprob,
        prompt_states,
        reply_logprob_rows,
        reply_logprobs,
        steering_curve,
    )
    from deception_causal.patching import ActivationPatching
    from deception_causal.stats import bootstrap_ci, compare_with_null, correlation, random_unit_directions
    from deception_causal.steering import Steering, per_sample_slopes, steerability

#: public name -> ``module:attribute`` it is read from on first use
_LAZY: dict[str, str] = {
    **{name: f"deception_causal.measures:{name}" for name in (
        "ablation_change", "centred_ablation", "patch_deltas", "patched_reply_logprob", "prompt_states",
        "reply_logprob_rows", "reply_logprobs", "steering_curve")},
    **{name: f"deception_causal.stats:{name}" for name in (
        "bootstrap_ci", "compare_with_null", "correlation", "random_unit_directions")},
    **{name: f"deception_causal.steering:{name}" for name in ("Steering", "per_sample_slopes", "steerability")},
    "difference_of_means": "deception_causal.direction:difference_of_means",
    "DirectionalAblation": "deception_causal.ablation:DirectionalAblation",
    "ActivationPatching": "deception_causal.patching:ActivationPatching",
    "Faithfulness": "deception_causal.faithfulness:Faithfulness",
    "CausalSettings": "deception_causal.common:CausalSettings",
}

__all__ = [
    "ActivationPatching",
    "CausalSettings",
    "DirectionalAblation",
    "Faithfulness",
    "Steering",
    "ablation_change",
    "bootstrap_ci",
    "centred_ablation",
    "compare_with_null",
    "correlation",
    "difference_of_means",
    "load_schema",
    "patch_deltas",
    "patched_reply_logprob",
    "per_sample_slopes",
    "prompt_states",
    "random_unit_directions",
    "reply_logprob_rows",
    "reply_logprobs",
    "schema_path",
    "steerability",
    "steering_curve",
]


def schema_path() -> Path:
    """The JSON Schema of ``causal_<test>.json`` shipped with the package."""
    return Path(__file__).with_name("schemas") / "causal_result.schema.json"


def load_schema() -> JSONObject:
    """The JSON Schema of ``causal_<test>.json`` as a dict (validate a result file against it)."""
    schema: JSONObject = json.loads(schema_path().read_text())
    return schema


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)

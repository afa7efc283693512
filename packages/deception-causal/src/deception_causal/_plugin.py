"""The deception-causal plugin: registers its causal tests lazily (no heavy imports here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_causal.options import CAUSAL_OPTIONS
from deception_core import hookimpl

if TYPE_CHECKING:
    from deception_causal.options import CausalFlags
    from deception_core import KindRegistry, RunOptions


@hookimpl
def register_causal_tests(registry: KindRegistry) -> None:
    registry.add(
        "patching", "deception_causal.patching:ActivationPatching",
        summary="patch the residual along the probe direction between matched honest/deceptive (or HIGH/LOW) runs; "
                "log-prob shift of the source reply vs norm-matched random directions",
    )
    registry.add(
        "ablation", "deception_causal.ablation:DirectionalAblation",
        summary="project the probe direction out about the dataset mean (at its layer and at all layers) during "
                "generation; change in the labelled deception rate and the replies' probe score vs random directions",
    )
    registry.add(
        "steering", "deception_causal.steering:Steering",
        summary="add alpha x the unit direction (in units of the activations' spread) during generation; dose-response, "
                "per-sample steerability and fluency vs random directions; writes causal_dose_response.png",
    )
    registry.add(
        "faithfulness", "deception_causal.faithfulness:Faithfulness",
        summary="does the probe score of the replies track the behaviour change across the interventions "
                "(correlation with bootstrap interval and permutation p-value)",
    )


@hookimpl
def register_run_options() -> RunOptions[CausalFlags]:
    """``--causal-samples``, mapped into each test's ``samples`` setting."""

    return CAUSAL_OPTIONS

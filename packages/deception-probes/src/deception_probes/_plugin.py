"""The deception-probes plugin: registers its components lazily (no heavy imports here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_core import hookimpl

if TYPE_CHECKING:
    from deception_core import KindRegistry


@hookimpl
def register_analyses(registry: KindRegistry) -> None:
    registry.add(
        "probes",
        "deception_probes.analysis:ProbeAnalysis",
        summary=(
            "linear probes (logistic, mass-mean, LAT; sparse logistic on SAE codes) with trial-grouped nested CV, "
            "bootstrap CIs, permutation and random-direction nulls, transfer matrices; writes probe_results.json"
        ),
    )

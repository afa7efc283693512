"""The deception-probes plugin: registers its components lazily (no heavy imports here)."""

from __future__ import annotations

from deception_core import hookimpl


@hookimpl
def register_analyses(registry) -> None:
    registry.add(
        "probes",
        "deception_probes.analysis:ProbeAnalysis",
        summary=(
            "linear probes (logistic, mass-mean, LAT; sparse logistic on SAE codes) with trial-grouped nested CV, "
            "bootstrap CIs, permutation and random-direction nulls, transfer matrices; writes probe_results.json"
        ),
    )

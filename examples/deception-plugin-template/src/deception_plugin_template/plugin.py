"""Entry-point module: registers the scenario lazily (keep this module light)."""

from __future__ import annotations

from deception_core import hookimpl


@hookimpl
def register_scenarios(registry) -> None:
    registry.add(
        "card_bluff",
        "deception_plugin_template.card_bluff:CardBluff",
        summary="Say how many aces you hold when the other player pays more for aces",
    )

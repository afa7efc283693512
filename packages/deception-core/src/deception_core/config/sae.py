"""The SAE component's settings: which sparse autoencoder encodes which layer.

A run encodes one layer with an SAE when ``components.sae`` names the encoder
(``{"sae": {"sae-lens": {"layer": 12}}}``; on the command line ``--sae`` and the ``--sae-*``
flags, `deception_core.sae.options`). The settings live here, beside the run's config, because
they are part of the run's identity (`deception_core.config.resolved`).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from deception_core.base.errors import ConfigError
from deception_core.config.structuring import structure

#: the component kind and the one encoder the core provides (sae-lens SAEs: a release or a local directory)
SAE_KIND = "sae"
SAE_ENCODER = "sae-lens"
DEFAULT_SAE_LAYER = 12


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} must be 0 or more, got {value}")


@attrs.frozen(kw_only=True)
class SaeSettings:
    """The SAE a run encodes its SAE layer with (unknown keys refused)."""

    layer: int = attrs.field(default=DEFAULT_SAE_LAYER, validator=_non_negative)
    release: str | None = None  # an sae-lens release (default: chosen for the model)
    id: str | None = None  # the SAE id inside the release
    path: str | None = None  # a local SAE directory (sae-lens save_model output)


def sae_settings(components: Mapping[str, Mapping[str, Mapping[str, object]]]) -> SaeSettings | None:
    """The run's SAE settings (None without an SAE); `ConfigError` naming the fix for a bad entry."""
    by_name = components.get(SAE_KIND) or {}
    unknown = sorted(set(by_name) - {SAE_ENCODER})
    if unknown:
        raise ConfigError(f"components.{SAE_KIND}: unknown SAE encoder(s) {unknown}; the one encoder is {SAE_ENCODER!r}")
    if SAE_ENCODER not in by_name:
        return None
    return structure(SaeSettings, by_name[SAE_ENCODER], source=f"components.{SAE_KIND}.{SAE_ENCODER}")

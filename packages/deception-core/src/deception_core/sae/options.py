"""``--sae`` and the ``--sae-*`` flags of `deception run`, mapped into the SAE component's settings.

The core's plugin registers them (`deception_core._builtin_plugin`); a config file given to
``--config`` may hold the same keys. ``--sae --sae-layer 20`` is ``components.sae.sae-lens.layer = 20``
(`deception_core.config.sae.SaeSettings`).
"""

from __future__ import annotations

import attrs

from deception_core.base.errors import ConfigError
from deception_core.config.plugin_options import ComponentParams, RunOptions
from deception_core.config.run import RunConfig
from deception_core.config.sae import DEFAULT_SAE_LAYER, SAE_ENCODER, SAE_KIND
from deception_core.config.structuring import option


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} must be 0 or more, got {value}")


@attrs.frozen(kw_only=True)
class SaeFlags:
    """The SAE's flags, as the cloud guide names them."""

    sae: bool = option(False, help="Encode the SAE layer with a sparse autoencoder.")
    sae_layer: int = option(DEFAULT_SAE_LAYER, validator=_non_negative, requires="sae",
                            help="The decoder block whose residual stream the SAE encodes.")
    sae_release: str | None = option(None, requires="sae", help="sae-lens release (default: chosen for the model).")
    sae_id: str | None = option(None, requires="sae", help="SAE id inside the release.")
    sae_path: str | None = option(None, requires="sae", help="A local SAE directory (sae-lens save_model output).")


#: flag -> the SAE setting it fills
_SETTING = {"sae_layer": "layer", "sae_release": "release", "sae_id": "id", "sae_path": "path"}


def sae_components(flags: SaeFlags, set_keys: frozenset[str], _config: RunConfig) -> ComponentParams:
    """``--sae`` turns the SAE on; each ``--sae-*`` flag the user set fills one of its settings (the
    flags without ``--sae`` were refused when they were structured)."""
    if not flags.sae:
        return {}
    params = {setting: getattr(flags, flag) for flag, setting in _SETTING.items() if flag in set_keys}
    return {SAE_KIND: {SAE_ENCODER: params}}


SAE_OPTIONS: RunOptions[SaeFlags] = RunOptions("deception-core (SAE)", SaeFlags, sae_components)

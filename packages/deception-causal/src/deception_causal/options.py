"""``--causal-samples``: the cloud guide's flag for how many prompts each causal test intervenes
on, mapped into the ``samples`` setting of every causal test of this package
(`deception_causal.common.CausalSettings`; ``components.causal_test.<test>.samples``)."""

from __future__ import annotations

import attrs

from deception_core import ComponentParams, ConfigError, RunConfig, RunOptions, option

#: the causal tests this package registers (`deception_causal._plugin`)
CAUSAL_TESTS = ("patching", "ablation", "steering", "faithfulness")
DEFAULT_SAMPLES = 20


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ConfigError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen(kw_only=True)
class CausalFlags:
    """The causal tests' flag, as the cloud guide names it."""

    causal_samples: int = option(DEFAULT_SAMPLES, validator=_positive, requires="causal",
                                 help="Prompts each causal test intervenes on.")


def causal_components(flags: CausalFlags, set_keys: frozenset[str], _config: RunConfig) -> ComponentParams:
    """``--causal-samples N``: ``samples = N`` for each of this package's causal tests (without
    ``--causal`` the flag was refused when it was structured)."""
    if "causal_samples" not in set_keys:
        return {}
    return {"causal_test": {name: {"samples": flags.causal_samples} for name in CAUSAL_TESTS}}


CAUSAL_OPTIONS: RunOptions[CausalFlags] = RunOptions("deception-causal", CausalFlags, causal_components)

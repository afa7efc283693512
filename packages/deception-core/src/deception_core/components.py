"""One route for component settings: a component is referenced by name plus parameters.

``RunConfig.components`` maps a kind (``evaluator``, ``analysis``, ``causal_test``, ``scenario``,
``capture_backend``) to component names and their parameters, from ``--config`` (and, for the
judge, ``--judge-model`` / ``--judge-url``). A component that takes settings declares its own
frozen attrs config class as ``settings_class``; the core structures the parameters into it here,
once, refusing unknown keys with the valid list. Evaluators, whose settings are read from the
environment as well, receive their parameters as ``EvaluatorContext.options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deception_core.config import structure
from deception_core.errors import ConfigError
from deception_core.registry import Kind


def settings_for(kind: Kind, name: str, component: type, params: Mapping[str, Any]) -> Any:
    """``params`` structured into ``component.settings_class`` (None when it takes none and none are given)."""
    settings_class = getattr(component, "settings_class", None)
    if settings_class is None:
        if params:
            raise ConfigError(f"{kind.value.replace('_', ' ')} {name!r} takes no settings; got {sorted(params)}")
        return None
    try:
        return structure(settings_class, params)
    except (ConfigError, ValueError) as error:
        raise ConfigError(f"{kind.value.replace('_', ' ')} {name!r}: {error}") from None


def build(kind: Kind, name: str, component: type, params: Mapping[str, Any]) -> Any:
    """An instance of ``component`` built with its structured settings."""
    settings = settings_for(kind, name, component, params)
    return component() if settings is None else component(settings)

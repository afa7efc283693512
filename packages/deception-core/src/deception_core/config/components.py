"""One route for component settings: a component is referenced by name plus parameters.

``RunConfig.components`` maps a kind (``evaluator``, ``analysis``, ``causal_test``, ``scenario``,
``capture_backend``) to component names and their parameters, from ``--config`` (and, for the
judge, ``--judge-model`` / ``--judge-url``). A component that takes settings declares its own
frozen attrs config class as ``settings_class``; the core structures the parameters into it here,
once, refusing unknown keys with the valid list. An evaluator's settings are then resolved by
its class (`deception_core.contracts.evaluator.Evaluator.resolve_settings`: a remote judge fills its model and
URL from the environment) and the resolved values are what the run records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from deception_core.base.errors import ConfigError
from deception_core.base.registry import Kind
from deception_core.config.run import structure


def settings_for(kind: Kind, name: str, component: type, params: Mapping[str, object]) -> attrs.AttrsInstance | None:
    """``params`` structured into ``component.settings_class`` (None when it takes none and none are given)."""
    settings_class = getattr(component, "settings_class", None)
    if settings_class is None:
        if params:
            raise ConfigError(f"{kind.value.replace('_', ' ')} {name!r} takes no settings; got {sorted(params)}")
        return None
    try:
        settings: attrs.AttrsInstance = structure(settings_class, params)
        return settings
    except (ConfigError, ValueError) as error:
        raise ConfigError(f"{kind.value.replace('_', ' ')} {name!r}: {error}") from None


def build(kind: Kind, name: str, component: type, params: Mapping[str, object]) -> Any:
    """An instance of ``component`` built with its structured settings."""
    settings = settings_for(kind, name, component, params)
    return component() if settings is None else component(settings)


def evaluator_settings(name: str, evaluator_class: type, params: Mapping[str, object]) -> object:
    """An evaluator's settings, structured (unknown keys refused) and resolved (every default filled)."""
    settings = settings_for(Kind.EVALUATOR, name, evaluator_class, params)
    return evaluator_class.resolve_settings(settings)  # type: ignore[attr-defined]


def build_evaluator(name: str, evaluator_class: type, params: Mapping[str, object], context: Any) -> Any:
    """An evaluator built on ``context`` (the backend's callables) with its resolved settings."""
    settings = evaluator_settings(name, evaluator_class, params)
    return evaluator_class(context) if settings is None else evaluator_class(context, settings)

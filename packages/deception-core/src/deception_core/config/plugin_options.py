"""Options a plugin adds to `deception run`, mapped into its components' settings.

A plugin owns its settings: `RunConfig` holds the run's intent, and each component's settings
travel in ``RunConfig.components``. For the command line (and config files written for it) a
plugin may still offer short flags such as ``--judge-model`` or ``--causal-samples``: it declares
them as a frozen attrs class whose fields are made with `deception_core.config.structuring.option`
(each field becomes a flag of `deception run`, and a config-file key of the same name), and a
function that maps the values the user set into component settings. The plugin returns a
`RunOptions` from its ``register_run_options`` hook (`deception_core.contracts.hookspecs`).

`config_with_options` is the one place those values are structured (types checked, unknown keys
refused), checked (``--causal-samples`` without ``--causal``) and merged into the components.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from deception_core.base.errors import ConfigError
from deception_core.config.run import RunConfig
from deception_core.config.structuring import structure

#: ``{kind: {component name: {parameter: value}}}``
ComponentParams = dict[str, dict[str, dict[str, Any]]]
S = TypeVar("S", bound=attrs.AttrsInstance)


@attrs.frozen
class RunOptions(Generic[S]):
    """Flags a plugin adds to `deception run`, and how they become component settings.

    ``settings``: a frozen attrs class whose fields, made with ``option(...)``, are the flags (and
    the config-file keys of the same names). ``apply(values, set_keys, config)`` returns the
    component settings they stand for (``{kind: {name: {parameter: value}}}``); ``set_keys`` are the
    options the user set (given, or different from their default), so a default never overrides a
    component's own. ``config`` is the run's config without them; raise `ConfigError` for a
    combination it cannot take (``--causal-samples`` without ``--causal``).
    """

    owner: str
    settings: type[S]
    apply: Callable[[S, frozenset[str], RunConfig], ComponentParams]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(field.name for field in attrs.fields(self.settings))


def option_keys(options: Iterable[RunOptions[attrs.AttrsInstance]]) -> frozenset[str]:
    """Every key (flag and config-file key) the plugins' options add."""
    return frozenset().union(*(o.keys for o in options))


def merge_components(base: Mapping[str, Mapping[str, Mapping[str, object]]],
                     patch: Mapping[str, Mapping[str, Mapping[str, object]]]) -> ComponentParams:
    """``base`` with ``patch``'s parameters laid over it, one parameter at a time."""
    merged: ComponentParams = {kind: {name: dict(params) for name, params in by_name.items()}
                               for kind, by_name in base.items()}
    for kind, by_name in patch.items():
        for name, params in by_name.items():
            merged.setdefault(kind, {}).setdefault(name, {}).update(params)
    return merged


def config_with_options(data: Mapping[str, object], options: Sequence[RunOptions[attrs.AttrsInstance]], *, source: str = "",
                        given: Collection[str] = ()) -> RunConfig:
    """A `RunConfig` from plain values that may include plugin options (flags or config-file keys):
    the run's own keys structured as usual, each plugin's structured into its settings class and
    mapped into ``components``."""
    plugin_keys = option_keys(options)
    core = {key: value for key, value in data.items() if key not in plugin_keys}
    base = RunConfig.from_dict(core, source=source, given=[key for key in given if key not in plugin_keys])
    components: ComponentParams = dict(base.components)
    for declared in options:
        values = {key: value for key, value in data.items() if key in declared.keys and value is not None}
        if not values:
            continue
        mine = [key for key in given if key in declared.keys]
        settings = structure(declared.settings, values, source=source, given=mine, context=base)
        set_keys = frozenset(mine) | {f.name for f in attrs.fields(declared.settings)
                                      if getattr(settings, f.name) != f.default}
        if not set_keys:
            continue
        try:
            patch = declared.apply(settings, set_keys, base)
        except ConfigError as error:
            where = f" in {source}" if source else ""
            raise ConfigError(f"{error}{where}") from None
        components = merge_components(components, patch)
    return base if components == base.components else attrs.evolve(base, components=components)

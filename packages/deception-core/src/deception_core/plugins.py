"""The plugin manager: built on first use, never at import.

Plugins are loaded from the entry-point group ``deception``; the toolkit's own packages register
their built-ins through that same group. A plugin that fails to import or to register is reported
with a warning naming it and skipped, so unrelated commands keep working.

Environment variables:

``DECEPTION_DISABLE_PLUGINS``
    comma-separated plugin (entry-point) names to skip, e.g. ``my_plugin,other``.
``DECEPTION_TRACE_PLUGINS``
    set to 1 to print every hook call to stderr.
``DECEPTION_EXTRA_PLUGINS``
    comma-separated ``module:attribute`` references (or bare module names) registered as extra
    plugins without an installed distribution, e.g. ``my_tests.plugin:PLUGIN``. Meant for a plugin
    under development or a test that drives the command line in a subprocess; each entry is named
    after its reference, and one that fails to import is warned about and skipped.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from importlib import metadata

import attrs
import pluggy

from deception_core import _builtin_plugin
from deception_core.base.errors import PluginError
from deception_core.base.registry import Kind, LazyRef, Provider, Registry
from deception_core.config.plugin_options import RunOptions
from deception_core.config.run import RunConfig
from deception_core.contracts import hookspecs

ENTRY_POINT_GROUP = "deception"
DISABLE_ENV = "DECEPTION_DISABLE_PLUGINS"
TRACE_ENV = "DECEPTION_TRACE_PLUGINS"
EXTRA_ENV = "DECEPTION_EXTRA_PLUGINS"

_REGISTRATION_HOOKS = {
    Kind.SCENARIO: "register_scenarios",
    Kind.EVALUATOR: "register_evaluators",
    Kind.CAPTURE_BACKEND: "register_capture_backends",
    Kind.CAUSAL_TEST: "register_causal_tests",
    Kind.ANALYSIS: "register_analyses",
    Kind.SAE_RELEASE: "register_sae_releases",
    Kind.STATEMENT_SET: "register_statement_sets",
    Kind.ENGINE: "register_engines",
}


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded; it is skipped."""


@attrs.define
class PluginInfo:
    """What `deception plugins` reports about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    hooks: list[str] = attrs.field(factory=list)
    error: str | None = None


@attrs.define
class PluginSet:
    """The plugin manager, what it loaded, and the registry built from it."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    registry: Registry

    def run_options(self) -> list[RunOptions[attrs.AttrsInstance]]:
        """The flags the plugins add to `deception run` (``register_run_options``); a flag that the run
        or another plugin already has is a `PluginError` naming both."""
        taken = {field.name: "deception-core (RunConfig)" for field in attrs.fields(RunConfig)}
        found: list[RunOptions[attrs.AttrsInstance]] = []
        for result in reversed(self.manager.hook.register_run_options()):  # in registration order: the core first
            for declared in result if isinstance(result, list) else [result]:
                if declared is None:
                    continue
                for key in sorted(declared.keys):
                    if key in taken:
                        raise PluginError(f"option {key!r} of {declared.owner} is already an option of {taken[key]}; "
                                          "rename one of them")
                    taken[key] = declared.owner
                found.append(declared)
        return found


def disabled_plugins() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: dict[str, metadata.EntryPoint] = {}
    for point in points:
        seen.setdefault(point.name, point)  # a package installed twice shows up twice
    return sorted(seen.values(), key=lambda p: (p.name != "core", p.name))


def _warn(name: str, error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    warnings.warn(
        f"deception plugin {name!r} could not be loaded and is skipped ({text}). "
        f"Fix or uninstall it, or set {DISABLE_ENV}={name} to silence this.",
        PluginLoadWarning,
        stacklevel=4,  # the caller of build_plugin_set (_warn <- a helper <- build_plugin_set <- caller)
    )
    return text


def build_plugin_set(extra_plugins: Mapping[str, object] | None = None) -> PluginSet:
    """Load every enabled plugin and build the registry.

    ``extra_plugins`` (name -> module or object) are registered as if they came from entry
    points; tests use it to add throwaway plugins.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    blocked = disabled_plugins()
    for name in blocked:
        manager.set_blocked(name)
    if os.environ.get(TRACE_ENV) == "1":
        manager.trace.root.setwriter(sys.stderr.write)
        manager.enable_tracing()

    infos: dict[str, PluginInfo] = {}
    candidates = _entry_point_candidates(blocked, infos)
    if not any(c.name == "core" for c in candidates) and "core" not in blocked:
        candidates.insert(0, _Candidate("core", "deception-core", None, _builtin_plugin.__name__, _builtin_plugin))
    for name, plugin in (extra_plugins or {}).items():
        candidates.append(_Candidate(name, None, None, getattr(plugin, "__name__", repr(plugin)), plugin))
    candidates += _environment_candidates(blocked, infos)
    _register_all(manager, candidates, infos)
    return PluginSet(manager, infos, _build_registry(manager, infos))


@attrs.frozen
class _Candidate:
    """A loaded plugin object waiting to be registered, and where it came from."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    plugin: object  # the module or object pluggy registers


def _entry_point_candidates(blocked: set[str], infos: dict[str, PluginInfo]) -> list[_Candidate]:
    """The installed plugins that load; one that does not is recorded in ``infos`` with its error."""
    candidates: list[_Candidate] = []
    for point in _entry_points():
        if point.name in blocked:
            continue
        dist = point.dist
        try:
            plugin = point.load()
        except Exception as error:  # a broken plugin must not break unrelated commands
            infos[point.name] = PluginInfo(
                point.name, dist.name if dist else None, dist.version if dist else None,
                point.value, error=_warn(point.name, error),
            )
            continue
        candidates.append(_Candidate(point.name, dist.name if dist else None, dist.version if dist else None,
                                     point.value, plugin))
    return candidates


def _environment_candidates(blocked: set[str], infos: dict[str, PluginInfo]) -> list[_Candidate]:
    """The plugins named in ``DECEPTION_EXTRA_PLUGINS`` that load."""
    candidates: list[_Candidate] = []
    for ref in (r.strip() for r in os.environ.get(EXTRA_ENV, "").split(",")):
        if not ref or ref in blocked:
            continue
        try:
            plugin = LazyRef(ref if ":" in ref else ref + ":")()
        except Exception as error:
            infos[ref] = PluginInfo(ref, None, None, ref, error=_warn(ref, error))
            continue
        candidates.append(_Candidate(ref, None, None, ref, plugin))
    return candidates


def _register_all(manager: pluggy.PluginManager, candidates: list[_Candidate], infos: dict[str, PluginInfo]) -> None:
    for candidate in candidates:
        info = PluginInfo(candidate.name, candidate.distribution, candidate.version, candidate.module)
        infos[candidate.name] = info
        try:
            manager.register(candidate.plugin, name=candidate.name)
        except Exception as error:
            info.error = _warn(candidate.name, error)
            continue
        info.hooks = sorted(caller.name for caller in manager.get_hookcallers(candidate.plugin) or [])
    manager.check_pending()


def _build_registry(manager: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> Registry:
    """Every component the registered plugins declare, by kind; a plugin that fails is recorded and skipped."""
    registry = Registry()
    for kind, hook_name in _REGISTRATION_HOOKS.items():
        caller = getattr(manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            info = infos[impl.plugin_name]
            provider = Provider(info.name, info.distribution, info.version)
            bound = registry.bound(kind, provider)
            try:
                impl.function(**{arg: bound for arg in impl.argnames})
            except PluginError:
                raise
            except Exception as error:
                info.error = _warn(info.name, error)
    registry.failed_plugins = {n: i.error for n, i in infos.items() if i.error}
    return registry


_CACHED: PluginSet | None = None


def get_plugin_set() -> PluginSet:
    """The process-wide plugin set, built on first call."""
    global _CACHED
    if _CACHED is None:
        _CACHED = build_plugin_set()
    return _CACHED


def get_registry() -> Registry:
    return get_plugin_set().registry


def reset_plugin_set() -> None:
    """Forget the cached plugin set (tests, or after installing a plugin)."""
    global _CACHED
    _CACHED = None

"""A typed registry of components contributed by plugins.

Entries are keyed by ``(kind, name)``. Each records the plugin and distribution (with version)
that provided it and holds a zero-import *factory*: calling it imports and returns the
implementation. Listing components therefore never imports torch or transformers.
"""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from deception_core.base.errors import ComponentNotFound, PluginError
from deception_core.base.types import JSONObject


class Kind(str, enum.Enum):
    """What a component is; one registration hook per kind."""

    SCENARIO = "scenario"
    EVALUATOR = "evaluator"
    CAPTURE_BACKEND = "capture_backend"
    CAUSAL_TEST = "causal_test"
    ANALYSIS = "analysis"
    SAE_RELEASE = "sae_release"
    STATEMENT_SET = "statement_set"
    ENGINE = "engine"


@attrs.frozen
class LazyRef:
    """A ``"package.module:attribute"`` reference imported on first call."""

    target: str

    def __call__(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module


def lazy(target: str) -> LazyRef:
    """Return a factory that imports ``target`` (``"pkg.mod:Name"``) only when called."""
    if ":" not in target:
        raise ValueError(f"lazy() needs 'module:attribute', got {target!r}")
    return LazyRef(target)


def lazy_exports(module: str, table: Mapping[str, str],
                 public: Sequence[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose exported names load on first use (PEP 562).

    ``table`` maps each lazily exported name to its ``"module:attribute"``; a name is imported the
    first time it is read, then cached in the package, so ``import package`` stays light.
    """
    namespace = sys.modules[module].__dict__

    def getattr_(name: str) -> object:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = lazy(target)()
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(public))

    return getattr_, dir_


@attrs.frozen
class Provider:
    """The plugin that registered a component, and the distribution it came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None


@attrs.frozen
class Entry:
    """One registered component."""

    kind: Kind
    name: str
    factory: Callable[[], object]
    summary: str
    provider: Provider
    metadata: JSONObject = attrs.field(factory=dict)

    def load(self) -> Any:
        """Import and return the implementation."""
        return self.factory()

    def describe(self) -> JSONObject:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "summary": self.summary,
            "plugin": self.provider.plugin,
            "distribution": self.provider.distribution,
            "version": self.provider.version,
            **({"metadata": self.metadata} if self.metadata else {}),
        }


class Registry:
    """Every component of every loaded plugin, refusing duplicate names."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Kind, str], Entry] = {}
        self.failed_plugins: dict[str, str] = {}

    def add(self, entry: Entry) -> None:
        key = (entry.kind, entry.name)
        if key in self._entries:
            first = self._entries[key].provider
            raise PluginError(
                f"{entry.kind.value} {entry.name!r} is registered twice: by plugin "
                f"{first.plugin!r} ({first.distribution}) and by {entry.provider.plugin!r} "
                f"({entry.provider.distribution}). Rename one, or disable a plugin with "
                "DECEPTION_DISABLE_PLUGINS."
            )
        self._entries[key] = entry

    def bound(self, kind: Kind, provider: Provider) -> KindRegistry:
        return KindRegistry(self, kind, provider)

    def entries(self, kind: Kind | None = None) -> Iterator[Entry]:
        for entry in self._entries.values():
            if kind is None or entry.kind is kind:
                yield entry

    def names(self, kind: Kind) -> list[str]:
        return [entry.name for entry in self.entries(kind)]

    def get(self, kind: Kind, name: str) -> Entry:
        try:
            return self._entries[(kind, name)]
        except KeyError:
            valid = ", ".join(sorted(self.names(kind))) or "(none)"
            hint = ""
            if self.failed_plugins:
                broken = "; ".join(f"{p}: {e}" for p, e in self.failed_plugins.items())
                hint = f" Some plugins failed to load and may have provided it ({broken})."
            raise ComponentNotFound(
                f"unknown {kind.value.replace('_', ' ')} {name!r}. Valid names: {valid}.{hint}"
            ) from None

    def __contains__(self, key: tuple[Kind, str]) -> bool:
        return key in self._entries


@attrs.frozen
class KindRegistry:
    """The view of the registry a registration hook receives: one kind, one plugin."""

    _registry: Registry
    kind: Kind
    provider: Provider

    def add(
        self,
        name: str,
        factory: Callable[[], object] | str,
        *,
        summary: str,
        **metadata: Any,
    ) -> None:
        """Register ``name``; ``factory`` is a callable or a ``"module:attr"`` string."""
        if isinstance(factory, str):
            factory = lazy(factory)
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(
                f"plugin {self.provider.plugin!r} registered an invalid {self.kind.value} "
                f"name {name!r}: use letters, digits, '_' and '-'"
            )
        summary = summary.strip().splitlines()[0] if summary.strip() else ""
        self._registry.add(Entry(self.kind, name, factory, summary, self.provider, dict(metadata)))

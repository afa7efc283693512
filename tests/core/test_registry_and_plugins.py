"""The plugin core: registry rules, broken and disabled plugins, provenance."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from deception_core import hookimpl
from deception_core.base.errors import ComponentNotFound, PluginError
from deception_core.base.registry import Kind, Provider, Registry, lazy
from deception_core.plugins import PluginLoadWarning, build_plugin_set


class _ScenarioPlugin:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def register_scenarios(self, registry) -> None:
        registry.add(self.name, "deception_core.testing.fakes:EchoScenario", summary="a test scenario\nsecond line")


class _BrokenPlugin:
    @hookimpl
    def register_scenarios(self, registry) -> None:
        raise RuntimeError("boom in registration")


def test_registry_refuses_duplicates_naming_both_plugins() -> None:
    with pytest.raises(PluginError, match="registered twice.*'first'.*'second'"):
        build_plugin_set(extra_plugins={"first": _ScenarioPlugin("dup"), "second": _ScenarioPlugin("dup")})


def test_entries_record_plugin_and_summary_first_line() -> None:
    plugins = build_plugin_set(extra_plugins={"mine": _ScenarioPlugin("mine_scenario")})
    entry = plugins.registry.get(Kind.SCENARIO, "mine_scenario")
    assert entry.provider.plugin == "mine"
    assert entry.summary == "a test scenario"
    assert entry.load().name == "echo"


def test_core_plugin_records_distribution_and_version() -> None:
    entry = build_plugin_set().registry.get(Kind.CAPTURE_BACKEND, "hf")
    assert entry.provider.plugin == "core"
    assert entry.provider.distribution == "deception-core"
    assert entry.provider.version


def test_unknown_component_lists_valid_names() -> None:
    registry = Registry()
    registry.bound(Kind.SCENARIO, Provider("p")).add("alpha", lambda: None, summary="a")
    with pytest.raises(ComponentNotFound, match="unknown scenario 'beta'. Valid names: alpha"):
        registry.get(Kind.SCENARIO, "beta")


def test_invalid_component_name_is_refused() -> None:
    registry = Registry()
    with pytest.raises(PluginError, match="invalid scenario name"):
        registry.bound(Kind.SCENARIO, Provider("p")).add("bad name!", lambda: None, summary="")


def test_broken_plugin_warns_and_others_still_register() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = build_plugin_set(extra_plugins={"broken": _BrokenPlugin(), "ok": _ScenarioPlugin("fine")})
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert any("'broken'" in m and "boom in registration" in m for m in messages)
    assert (Kind.SCENARIO, "fine") in plugins.registry
    assert plugins.plugins["broken"].error.startswith("RuntimeError")


def test_disable_env_blocks_named_plugins(monkeypatch) -> None:
    monkeypatch.setenv("DECEPTION_DISABLE_PLUGINS", "core, other")
    plugins = build_plugin_set()
    assert "core" not in plugins.plugins
    assert (Kind.CAPTURE_BACKEND, "hf") not in plugins.registry


def test_lazy_refs_need_module_and_attribute() -> None:
    with pytest.raises(ValueError):
        lazy("no_colon")
    assert lazy("json:dumps")() is json.dumps


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env},
                          timeout=120)


def test_loading_every_entry_point_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from importlib import metadata\n"
        "for ep in metadata.entry_points(group='deception'): ep.load()\n"
        "from deception_core.plugins import get_registry\n"
        "get_registry()\n"
        "heavy = [m for m in ('torch', 'transformers', 'transformer_lens', 'sae_lens', 'sklearn') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_broken_third_party_entry_point_does_not_break_listing(tmp_path) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[deception]\nbroken = broken_plugin_module_that_is_missing\n")
    result = subprocess.run(
        [sys.executable, "-m", "deception_core.cli", "scenarios"], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "plugin 'broken' could not be loaded" in result.stderr

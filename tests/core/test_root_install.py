"""The guide's install and verify steps: `pip install -e .` at the root, `from interpretability import ...`."""

from __future__ import annotations

import runpy
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import setuptools
import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _root_requirements(monkeypatch) -> list[str]:
    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    runpy.run_path(str(ROOT / "setup.py"))
    return captured["install_requires"]


def test_root_distribution_depends_on_each_package_folder(monkeypatch) -> None:
    requirements = _root_requirements(monkeypatch)
    named = {}
    for requirement in requirements:
        name, _, url = requirement.partition(" @ ")
        folder = Path(url2pathname(urlparse(url).path))
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert project["name"] == name.split("[")[0]
        named.setdefault(project["name"], []).append(name)
    assert sorted(named) == ["deception-causal", "deception-core", "deception-probes", "deception-scenarios"]
    assert "deception-core[embedded,sae,transformer-lens]" in named["deception-core"]


def test_root_pyproject_is_the_deception_meta_distribution() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "deception"
    assert project["project"]["dynamic"] == ["dependencies"]
    assert project["tool"]["setuptools"]["packages"] == []


def test_predecessor_import_path_gives_the_runner() -> None:
    from deception_core import InterpretabilityRunner as current
    from interpretability import InterpretabilityRunner, RunConfig

    assert InterpretabilityRunner is current
    assert RunConfig().model == "google/gemma-2b-it"

"""The public API reference covers the public API: every name the packages export (``__all__``), and
every name the public-API tests import from them, is rendered on the reference page with its own
docstring. (The strict site build, ``nox -s docs``, fails when a rendered name cannot be resolved.)"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def docs_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOKS = docs_hooks()
ENTRIES = list(HOOKS.public_api_entries())
RENDERED = {(package, name) for package, name, _ in ENTRIES}


def imported_by_public_api_tests() -> set[tuple[str, str]]:
    """``(package, name)`` for every ``from <package> import name`` in the tests named after the public API."""
    names: set[tuple[str, str]] = set()
    for path in (ROOT / "tests").rglob("test_*public_api*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in HOOKS.PUBLIC_PACKAGES:
                names.update((node.module, alias.name) for alias in node.names if alias.name != "*")
    return names


def own_docstring(obj: object) -> str:
    """The object's own docstring (a class without one would otherwise show its base class's)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return (doc or "").strip()


def test_the_reference_lists_every_exported_name() -> None:
    exported = {(package, name) for package in HOOKS.PUBLIC_PACKAGES for name in HOOKS.public_names(package)}
    assert exported == RENDERED


def test_every_name_the_public_api_tests_import_is_rendered() -> None:
    assert imported_by_public_api_tests() - RENDERED == set()


@pytest.mark.parametrize(("package", "name", "path"), ENTRIES, ids=[f"{p}.{n}" for p, n, _ in ENTRIES])
def test_every_rendered_name_has_its_own_docstring(package: str, name: str, path: str | None) -> None:
    obj = getattr(importlib.import_module(package), name)
    if not (inspect.isclass(obj) or callable(obj)):
        assert f"`{package}.{name}`" in HOOKS.public_api(), "a value is rendered with its repr"
        return
    assert own_docstring(obj), f"{package}.{name} has no docstring of its own"


def test_the_page_renders_each_class_and_function_where_it_is_defined() -> None:
    page = HOOKS.public_api()
    for package, name, path in ENTRIES:
        if path is not None:
            assert f"::: {path}\n" in page, f"{package}.{name}"

"""The public API: every exported name resolves, and every name the documentation imports is exported."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("deception_core", "deception_probes", "deception_causal", "deception_scenarios", "interpretability")
#: where the documentation shows imports from the packages' top level: the READMEs, the packages' docstrings
#: and the examples
DOCUMENTS = [ROOT / "README.md", ROOT / "packages" / "deception-core" / "README.md",
             *sorted((ROOT / "packages").glob("*/src/deception_*/__init__.py")), *sorted((ROOT / "examples").glob("*.py"))]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_each_name_once(package: str) -> None:
    names = importlib.import_module(package).__all__
    assert len(names) == len(set(names))


@pytest.mark.parametrize("package", PACKAGES)
def test_dir_shows_the_lazy_names(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", ["deception_core", "deception_probes", "deception_causal", "deception_scenarios"])
def test_an_unknown_name_is_an_attribute_error(package: str) -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        importlib.import_module(package).no_such_name  # noqa: B018


def test_the_core_exports_what_research_code_and_plugins_need() -> None:
    import deception_core

    needed = {"read_dataset", "Dataset", "Sample", "Trial", "Label", "Message", "Mode", "Condition", "Position",
              "RunConfig", "InterpretabilityRunner", "RunResults", "load_model", "Model", "capture_texts", "Scenario",
              "Game", "Evaluator", "CaptureBackend", "CausalTest", "Analysis", "StatementSet", "hookimpl", "Kind"}
    assert needed - set(deception_core.__all__) == set()


def test_a_lazy_name_is_the_object_of_its_home_module() -> None:
    import deception_core
    from deception_core.store import dataset

    assert deception_core.read_dataset is dataset.read_dataset


def test_the_plugin_packages_export_their_array_functions() -> None:
    import deception_causal
    import deception_probes

    probes = {"LogisticMethod", "LinearProbe", "auroc", "auroc_ci", "permutation_test", "random_direction_null"}
    causal = {"steering_curve", "ablation_change", "reply_logprobs", "bootstrap_ci", "random_unit_directions"}
    assert probes - set(deception_probes.__all__) == set()
    assert causal - set(deception_causal.__all__) == set()


def _documented_imports() -> list[tuple[str, str, str]]:
    """(document, package, name) for each ``from <package> import name`` in the documents: the examples'
    import statements, and the text of the others (their code blocks and docstrings)."""
    found = []
    pattern = re.compile(r"from (deception_core|deception_probes|deception_causal|deception_scenarios|interpretability)"
                         r" import \(?([\w ,\n]+)\)?")
    for document in DOCUMENTS:
        text = document.read_text()
        if document.parent.name == "examples":
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and node.module in PACKAGES:
                    found += [(document.name, node.module, alias.name) for alias in node.names]
            continue
        for match in pattern.finditer(text):
            names = [name.strip() for name in match.group(2).replace("\n", " ").split(",")]
            found += [(document.name, match.group(1), name) for name in names if name.isidentifier()]
    return found


def test_the_documentation_imports_names_the_packages_export() -> None:
    documented = _documented_imports()
    unknown = [f"{document}: from {package} import {name}" for document, package, name in documented
               if name not in importlib.import_module(package).__all__]
    assert unknown == []


def test_the_documentation_check_sees_the_walkthrough() -> None:
    names = {(package, name) for document, package, name in _documented_imports() if document == "walkthrough.py"}
    assert ("deception_core", "load_model") in names

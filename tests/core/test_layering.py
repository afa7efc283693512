"""The core's import structure: no cycles, few function-level imports (each with its reason), light entry points.

Function-level imports of the project's own modules hide cycles and make a module's dependencies hard to
see; the few left exist because the imported module would load torch (or an optional extra) at import
time, and each says so on its line or the line above.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "packages" / name / "src" for name in
           ("deception-core", "deception-probes", "deception-causal", "deception-scenarios")]
OWN = ("deception_core", "deception_probes", "deception_causal", "deception_scenarios", "interpretability")
MAX_FUNCTION_LEVEL = 20
#: what `deception --help` and the plugins' entry points must not import
HEAVY = ("torch", "transformers", "pandas", "ray", "sae_lens", "transformer_lens", "sklearn", "scipy", "matplotlib")


def _is_own(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in OWN
    return any(alias.name.split(".")[0] in OWN for alias in node.names)


def function_level_imports() -> Iterator[tuple[Path, ast.Import | ast.ImportFrom, list[str]]]:
    """Every import of the project's own modules inside a function, with its file's lines."""
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            text = path.read_text()
            lines = text.splitlines()
            seen: set[int] = set()
            for function in ast.walk(ast.parse(text)):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and _is_own(node) and node.lineno not in seen:
                        seen.add(node.lineno)
                        yield path, node, lines


def _has_reason(node: ast.Import | ast.ImportFrom, lines: list[str], imports_at: set[int]) -> bool:
    """A comment on the import's own line(s), or on the line above it (or above the run of imports it ends)."""
    if any("#" in lines[number - 1] for number in range(node.lineno, (node.end_lineno or node.lineno) + 1)):
        return True
    above = node.lineno - 1
    while above in imports_at:  # one comment may explain a run of consecutive imports
        above -= 1
    return above >= 1 and lines[above - 1].strip().startswith("#")


def _import_lines(path: Path) -> set[int]:
    numbers: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            numbers.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return numbers


def test_at_most_twenty_function_level_imports_of_the_projects_own_modules() -> None:
    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for path, node, _ in function_level_imports()]
    assert len(found) <= MAX_FUNCTION_LEVEL, "\n".join(found)


def test_every_function_level_import_says_why_on_its_line_or_the_line_above() -> None:
    lines_of_imports: dict[Path, set[int]] = {}
    silent = []
    for path, node, lines in function_level_imports():
        imports_at = lines_of_imports.setdefault(path, _import_lines(path))
        if not _has_reason(node, lines, imports_at):
            silent.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert silent == [], "add a one-line reason (heavy dependency, optional extra):\n" + "\n".join(silent)


def _cyclic_components(package: str) -> list[list[str]]:
    """The import cycles of ``package`` in grimp's graph: every import counts, inside functions and
    under ``if TYPE_CHECKING:`` too."""
    grimp = pytest.importorskip("grimp")
    return cyclic_components(grimp.build_graph(package, cache_dir=None))


def cyclic_components(graph: Any) -> list[list[str]]:
    """Strongly connected components of more than one module of a grimp import graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in graph.modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return components


@pytest.mark.parametrize("package", ["deception_core", "deception_probes", "deception_causal", "deception_scenarios"])
def test_no_import_cycles(package: str) -> None:
    assert _cyclic_components(package) == []


def test_the_cycle_count_finds_a_cycle_of_three_and_ignores_a_chain() -> None:
    grimp = pytest.importorskip("grimp")
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"):
        graph.add_module(module)
    for importer, imported in (("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.c", "pkg.a"), ("pkg.c", "pkg.d")):
        graph.add_import(importer=importer, imported=imported)
    assert cyclic_components(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_command_line_and_the_plugins_entry_points_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import deception_core, deception_core.cli, interpretability\n"
        "import deception_probes, deception_probes._plugin\n"
        "import deception_causal, deception_causal._plugin\n"
        "import deception_scenarios, deception_scenarios._plugin\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_import_contracts_hold() -> None:
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

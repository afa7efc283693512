"""The `Any` budget: at most 5 % of the annotations in the four packages' sources mention `Any`.

An annotation is a parameter's (positional, keyword-only, ``*args`` and ``**kwargs`` included), a return
type, or the annotation of an annotated assignment (``x: T = ...``, attribute declarations of attrs classes
included). It "mentions Any" when its text names ``Any`` (``Any``, ``typing.Any``, ``dict[str, Any]``,
``"Any"`` as a forward reference, ...).

Aliases of Any are expanded, not a way around the budget: a module-level alias whose right-hand side mentions
Any (``Blob = dict[str, Any]``, ``Blob: TypeAlias = Any``) makes every annotation that names the alias count as
mentioning Any, transitively (an alias of such an alias too).

Run as a script (``python tests/core/test_typing_budget.py``, or ``nox -s typing-budget``) it prints the
figures and the files with the most `Any` annotations.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("deception-core", "deception-scenarios", "deception-probes", "deception-causal")
BUDGET = 0.05

_TYPE_EXPRESSIONS = (ast.Name, ast.Attribute, ast.Subscript, ast.BinOp, ast.Constant)


class AnyCount(NamedTuple):
    annotations: int
    with_any: int
    by_file: Counter[str]

    @property
    def share(self) -> float:
        return self.with_any / self.annotations if self.annotations else 0.0

    def describe(self) -> str:
        return (
            f"{self.with_any} of {self.annotations} annotations mention Any ({100 * self.share:.1f} %, "
            f"budget {100 * BUDGET:.0f} %)"
        )


def source_files(root: Path = ROOT) -> list[Path]:
    """Every Python file of the four packages' sources."""
    return sorted(f for package in PACKAGES for f in (root / "packages" / package / "src").rglob("*.py"))


def _annotations(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            found.extend(p.annotation for p in params if p is not None and p.annotation is not None)
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def _alias_candidates(tree: ast.Module) -> dict[str, str]:
    """Module-level ``Name = <type expression>`` and ``Name: TypeAlias = ...``: name -> right-hand side's text."""
    aliases: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, _TYPE_EXPRESSIONS):
                aliases[node.targets[0].id] = ast.unparse(node.value)
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
            and "TypeAlias" in ast.unparse(node.annotation)
        ):
            aliases[node.target.id] = ast.unparse(node.value)
    return aliases


def _mentions(text: str, names: set[str]) -> bool:
    return any(name in names for name in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))


def any_aliases(trees: list[ast.Module]) -> set[str]:
    """Names of the aliases that expand to something mentioning Any (fixed point over alias-of-alias)."""
    candidates: dict[str, str] = {}
    for tree in trees:
        candidates.update(_alias_candidates(tree))
    anyish = {"Any"}
    while True:
        grown = anyish | {name for name, text in candidates.items() if _mentions(text, anyish)}
        if grown == anyish:
            return anyish
        anyish = grown


def count_any(root: Path = ROOT) -> AnyCount:
    files = source_files(root)
    trees = [ast.parse(f.read_text(encoding="utf-8"), filename=str(f)) for f in files]
    anyish = any_aliases(trees)
    total = 0
    with_any = 0
    by_file: Counter[str] = Counter()
    for path, tree in zip(files, trees, strict=True):
        for annotation in _annotations(tree):
            total += 1
            if _mentions(ast.unparse(annotation), anyish):
                with_any += 1
                by_file[str(path.relative_to(root))] += 1
    return AnyCount(total, with_any, by_file)


def test_the_counter_sees_parameters_returns_assignments_and_aliases(tmp_path: Path) -> None:
    src = tmp_path / "packages" / "deception-core" / "src" / "pkg"
    src.mkdir(parents=True)
    (src / "aliases.py").write_text("from typing import Any\nBlob = dict[str, Any]\nBlobs = list[Blob]\n")
    (src / "mod.py").write_text(
        "def f(a: int, *args: Blobs, b: 'Any', **kw: str) -> dict[str, int]:\n"
        "    x: float = 1.0\n"
        "    return {}\n"
    )
    count = count_any(tmp_path)
    assert (count.annotations, count.with_any) == (6, 2)


def test_at_most_five_percent_of_annotations_mention_any() -> None:
    count = count_any()
    worst = ", ".join(f"{path} {n}" for path, n in count.by_file.most_common(5))
    assert count.share <= BUDGET, f"{count.describe()}; most in: {worst}"


def main() -> int:
    count = count_any()
    print(count.describe())
    for path, n in count.by_file.most_common(15):
        print(f"  {n:4d}  {path}")
    return 0 if count.share <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())

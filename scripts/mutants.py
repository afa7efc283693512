"""Mutation testing of the decisions users rely on (``nox -s mutants``), with mutmut.

The decision functions (label combining, best-probe selection, thresholds, the guards that answer
"not testable" / "not computable", the output-folder policy, checkpoint identity) are listed in
`DECISIONS`; each mutant of them must make one of `TESTS` fail. The four packages are staged into
one ``src/`` tree under ``.mutants/`` (mutmut names modules by their path below ``src/``), with every
function of a decision module that is not a decision fenced off by ``# pragma: no mutate``, so the
mutants are the decisions' and the tests run are the ones that call them. The sources of the
checkout are never modified.

    python scripts/mutants.py stage            # write .mutants/ (done by `run`)
    python scripts/mutants.py run [-j N]       # stage, run mutmut there, print the results by function
    python scripts/mutants.py results          # print the last run's results again
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".mutants"
PACKAGES = ("deception-core", "deception-scenarios", "deception-probes", "deception-causal")

#: module (below src/) -> the decision functions in it ("Class.method" for methods); None: every function
DECISIONS: dict[str, tuple[str, ...] | None] = {
    "deception_core/base/types.py": ("combine_labels",),
    "deception_probes/engine.py": ("_select_best",),
    "deception_probes/metrics.py": ("auroc", "balanced_accuracy", "recall_at_fpr"),
    "deception_probes/transfer.py": ("control_threshold",),
    "deception_core/report/inputs.py": ("decision_threshold",),
    # the "not testable" decision is the scheme's; permutation_test's p-value arithmetic has its known-answer
    # tests in tests/probes (too slow to run per mutant)
    "deception_probes/nulls.py": ("_log_multinomial", "_log_distinct", "permutation_scheme"),
    "deception_probes/generalise.py": ("_missing", "train_test"),
    "deception_causal/usable.py": ("choose_direction",),
    "deception_core/outputs/policy.py": ("read_marker", "is_run_folder", "_is_staging", "check_output",
                                              "remove_dead_staging", "clear_for_overwrite", "is_write_error",
                                              "describe_os_error"),
    "deception_core/checkpoints/checkpoint.py": ("run_identity", "identity_hash", "area_name", "area_for",
                                           "_read_manifest"),
}

#: the tests that exercise the decisions (mutmut runs, for each mutant, those of them that call its function)
TESTS = ("tests/core/test_decision_tables.py", "tests/core/test_policy_tables.py")


def _fence(source: str, keep: tuple[str, ...] | None) -> str:
    """``source`` with every top-level function or class not in ``keep`` between no-mutate pragmas."""
    if keep is None:
        return source
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    fenced: list[tuple[int, int]] = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if node.name in keep:
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        assert node.end_lineno is not None
        fenced.append((start, node.end_lineno))
    for start, end in reversed(fenced):
        lines[end:end] = ["# pragma: no mutate end\n"]
        lines[start:start] = ["# pragma: no mutate start\n"]
    return "".join(lines)


def stage() -> Path:
    """Write ``.mutants/``: src/ (the four packages, decision modules fenced), tests/, pyproject.toml."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    src = STAGE / "src"
    for package in PACKAGES:
        shutil.copytree(ROOT / "packages" / package / "src", src, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for module, keep in DECISIONS.items():
        path = src / module
        text = path.read_text()
        missing = [name for name in keep or () if f"def {name}(" not in text]
        if missing:
            raise SystemExit(f"{module} no longer defines {', '.join(missing)}: update DECISIONS in {__file__}")
        path.write_text(_fence(text, keep))
    shutil.copytree(ROOT / "tests", STAGE / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = (ROOT / "pyproject.toml").read_text()
    settings = {
        "source_paths": ["src"],
        "only_mutate": [f"src/{module}" for module in DECISIONS],
        "pytest_add_cli_args_test_selection": list(TESTS),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q"],
    }
    table = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    (STAGE / "pyproject.toml").write_text(f"{pyproject}\n[tool.mutmut]\n{table}\n")
    return STAGE


def _function_of(mutant: str) -> str:
    """``deception_core.base.types.x_combine_labels__mutmut_3`` -> ``deception_core.base.types.combine_labels``."""
    head = mutant.partition("__mutmut_")[0]
    module, _, name = head.rpartition(".")
    if name.startswith("x_"):
        name = name[2:]
    elif "ǁ" in name:
        name = ".".join(part for part in name.split("ǁ") if part)
    return f"{module}.{name}"


def results() -> dict[str, Counter[str]]:
    """Status counts per decision function, from ``mutmut results --all true``."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=STAGE,
                         capture_output=True, text=True, check=True).stdout
    by_function: dict[str, Counter[str]] = defaultdict(Counter)
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            by_function[_function_of(name)][status] += 1
    return dict(by_function)


def report(by_function: dict[str, Counter[str]]) -> int:
    total: Counter[str] = Counter()
    width = max((len(f) for f in by_function), default=10)
    print(f"{'function':<{width}}  {'mutants':>7}  {'killed':>6}  {'survived':>8}  other")
    for function in sorted(by_function):
        counts = by_function[function]
        total.update(counts)
        other = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("killed", "survived"))
        print(f"{function:<{width}}  {sum(counts.values()):>7}  {counts['killed']:>6}  {counts['survived']:>8}  {other}")
    n = sum(total.values())
    share = total["killed"] / n if n else 0.0
    print(f"\n{n} mutants: {total['killed']} killed ({share:.1%}), {total['survived']} survived, "
          + ", ".join(f"{v} {k}" for k, v in sorted(total.items()) if k not in ("killed", "survived")))
    print(f"survivors: `cd {STAGE.relative_to(ROOT)} && python -m mutmut show NAME`, "
          "`python -m mutmut results` lists them")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["stage", "run", "results"])
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel")
    args = parser.parse_args(argv)
    if args.action in ("stage", "run"):
        print(f"staged {stage()}")
    if args.action == "run":
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the staged src/ is the one imported
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.jobs)], cwd=STAGE, env=env,
                       check=True)
    if args.action in ("run", "results"):
        return report(results())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sessions for the deception monorepo. They run in the environment made by scripts/bootstrap.sh.

    nox -s lint typecheck imports tests   # the defaults
    nox -s demo              # the README's quick start on the embedded Gemma-3-270M
    nox -s bench             # capture throughput benchmark (ratios against bare HF generate)
    nox -s slow              # tests marked slow (the embedded model)
    nox -s gpu               # tests marked gpu, on a CUDA machine
    nox -s quickstart        # the README's quick start as a test (embedded model), as .ci/run's second step does
    nox -s typing-budget     # the share of annotations that mention Any (budget 5 %)
    nox -s mutants           # mutation testing of the decisions (labels, best probe, thresholds, output policy, ...)
    nox -s docs              # the documentation site (mkdocs.yml, docs/) built with --strict into site/
"""

from __future__ import annotations

import sys

import nox

nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["lint", "typecheck", "imports", "tests"]

QUICKSTART = [
    "deception", "run", "--model", "embedded:gemma-3-270m", "--mode", "both",
    "--scenario-name", "info_withholding", "--scenario-name", "capability_bluff",
    "--trials", "2", "--max-rounds", "2", "--label-policy", "rule",
    "--output", "quickstart_output",
]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff over every package, the examples, the tests and the scripts."""
    session.run("ruff", "check", "packages", "examples", "tests", "noxfile.py", "conftest.py", "scripts")


@nox.session(python=False)
def typecheck(session: nox.Session) -> None:
    """mypy over every package (settings in pyproject.toml); zero errors."""
    session.run("python", "-m", "mypy")


@nox.session(name="typing-budget", python=False)
def typing_budget(session: nox.Session) -> None:
    """How many annotations mention `Any` (aliases of Any expanded); fails above the 5 % budget."""
    session.run("python", "tests/core/test_typing_budget.py")


@nox.session(python=False)
def imports(session: nox.Session) -> None:
    """import-linter's contracts (pyproject.toml): the core's folders import down the layers; plugins use its public API."""
    session.run("lint-imports")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The default test suite (fast: tiny models, synthetic arrays)."""
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python=False)
def slow(session: nox.Session) -> None:
    """Tests marked slow (the README's quick start, the embedded model, the guide's SAE examples), on two workers."""
    session.run("python", "-m", "pytest", "-q", "-m", "slow", "-n", "2", "--dist", "loadfile", *session.posargs)


@nox.session(python=False)
def quickstart(session: nox.Session) -> None:
    """The README's quick-start command, parsed from the README, run and checked (tests/integration/test_quickstart.py)."""
    session.run("python", "-m", "pytest", "-q", "-m", "slow", "tests/integration/test_quickstart.py", *session.posargs)


@nox.session(python=False)
def mutants(session: nox.Session) -> None:
    """mutmut over the decision functions, each mutant against the tests that call it (scripts/mutants.py).

    CPU heavy (minutes on 2 cores); not part of CI. Prints killed and surviving mutants per function.
    """
    session.run("python", "scripts/mutants.py", "run", *session.posargs)


@nox.session(python=False)
def gpu(session: nox.Session) -> None:
    """Tests marked gpu (skipped without CUDA)."""
    session.run("python", "-m", "pytest", "-q", "-m", "gpu", *session.posargs)


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    """The README's quick start: two scenarios in both modes, two trials per condition, two rounds, embedded model."""
    session.run(*QUICKSTART, *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Capture throughput: bare generate vs hf / transformer-lens / hybrid capture and batch sizes."""
    session.run("deception", "bench", "--model", "embedded:gemma-3-270m", *session.posargs)


@nox.session(python=False)
def docs(session: nox.Session) -> None:
    """The documentation site built with --strict: a broken link or reference, or any other warning, fails it.

    The reference pages for the configuration, the component settings and the public API are generated
    from the code during the build (scripts/docs_hooks.py); the site lands in site/.
    """
    session.run(sys.executable, "-m", "mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})

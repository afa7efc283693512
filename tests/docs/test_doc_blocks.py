"""Every code block of the docs and the README is run or checked (see `doc_blocks` for how each kind is covered).

The blocks of one page run in order, in one folder and (Python) one namespace, as a reader would
type them. The README's quick-start command runs once per module (on the same model); a page that
gives that command, or reads ``quickstart_output`` without making it, gets a copy of that run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import tomllib
from click.testing import CliRunner
from doc_blocks import (
    CHECK_SHELL,
    CONFIG,
    EMBEDDED,
    OUTPUT,
    ROOT,
    RUN_PYTHON,
    RUN_SHELL,
    TOML,
    Block,
    Command,
    all_blocks,
    commands,
    defined_names,
    is_deception,
    is_python,
)

from deception_core.base.errors import UsageError
from deception_core.config.run import RunConfig
from deception_core.plugins import reset_plugin_set

BLOCKS = all_blocks()
RUNNABLE = [b for b in BLOCKS if b.kind in (RUN_PYTHON, RUN_SHELL)]
CHECKED = [b for b in BLOCKS if b.kind not in (RUN_PYTHON, RUN_SHELL)]
QUICKSTART = "quickstart_output"
#: a plugin under development is registered with DECEPTION_EXTRA_PLUGINS; its source must be importable
TEMPLATE_SRC = ROOT / "examples" / "deception-plugin-template" / "src"


def _ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


def readme_quickstart() -> list[str]:
    """The README's quick-start command (after ``bootstrap.sh &&``), as test_quickstart reads it."""
    block = next(b for b in BLOCKS if b.page == "README.md" and "deception run" in b.code)
    return next(c.argv for c in commands(block.code) if is_deception(c.argv))


class Pages:
    """Runs the runnable blocks page by page on one model (``model`` replaces the embedded one)."""

    def __init__(self, tmp_path_factory: Any, model: str, run_extra: list[str]) -> None:
        self.tmp = tmp_path_factory
        self.model = model
        self.run_extra = run_extra
        self.folders: dict[str, Path] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self._quickstart: Path | None = None

    def substituted(self, text: str) -> str:
        return text.replace(EMBEDDED, self.model)

    def argv(self, argv: list[str]) -> list[str]:
        argv = [self.substituted(word) for word in argv[1:]]
        if argv and argv[0] == "run" and "--max-tokens" not in argv:
            argv += self.run_extra
        return argv

    def quickstart(self) -> Path:
        """One run of the README's quick-start command on this model, made the first time a page needs it."""
        if self._quickstart is None:
            folder = self.tmp.mktemp("docs-quickstart")
            result = self.deception(self.argv(readme_quickstart()), folder, {})
            assert result.exit_code == 0, result.output
            self._quickstart = folder / QUICKSTART
        return self._quickstart

    def folder(self, block: Block) -> Path:
        """The page's working folder (with a quick-start run in it where the page reads one it does not make)."""
        if block.page not in self.folders:
            folder = self.tmp.mktemp("docs-" + block.page.replace("/", "-").removesuffix(".md"))
            page_blocks = [b for b in RUNNABLE if b.page == block.page]
            reads = any(QUICKSTART in b.code for b in page_blocks)
            makes = any(QUICKSTART in c.argv and "run" in c.argv for b in page_blocks if b.kind == RUN_SHELL
                        for c in commands(b.code))
            if reads and not makes:
                shutil.copytree(self.quickstart(), folder / QUICKSTART)
            self.folders[block.page] = folder
        return self.folders[block.page]

    def deception(self, argv: list[str], folder: Path, env: dict[str, str]) -> Any:
        from deception_core.cli import cli

        previous = Path.cwd()
        os.chdir(folder)
        reset_plugin_set()  # DECEPTION_EXTRA_PLUGINS is read when the plugin set is built
        try:
            return CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)
        finally:
            os.chdir(previous)
            reset_plugin_set()

    def run(self, block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
        folder = self.folder(block)
        monkeypatch.syspath_prepend(str(TEMPLATE_SRC))
        if block.kind == RUN_PYTHON:
            namespace = self.namespaces.setdefault(block.page, {"__name__": "__docs__"})
            monkeypatch.chdir(folder)
            exec(compile(self.substituted(block.code), block.id, "exec"), namespace)  # the docs' own code
            missing = defined_names(block.code) - set(namespace)
            assert not missing, f"{block.id} did not run to its end: {sorted(missing)} unbound"
            return
        for command in commands(block.code):
            self.run_command(block, command, folder)

    def run_command(self, block: Block, command: Command, folder: Path) -> None:
        if is_python(command.argv):
            env = {**os.environ, **command.env, "PYTHONPATH": os.pathsep.join([*sys.path, str(TEMPLATE_SRC)])}
            done = subprocess.run([sys.executable, *command.argv[1:]], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, f"{block.id}: {command.argv}\n{done.stdout}\n{done.stderr}"
            return
        assert is_deception(command.argv), (
            f"{block.id}: {command.argv[0]!r} cannot run in the test suite; give the block a title that says "
            "where it runs (title=\"on a GPU pod\", \"on a Slurm cluster\", \"sets up the environment\")")
        argv = self.argv(command.argv)
        if command.argv[1:] == readme_quickstart()[1:] and not (folder / QUICKSTART).exists():
            shutil.copytree(self.quickstart(), folder / QUICKSTART)  # the README's quick start: run once per module
            assert (folder / QUICKSTART / "dataset" / "meta.json").is_file()
            return
        result = self.deception(argv, folder, command.env)
        assert result.exit_code == 0, f"{block.id}: deception {' '.join(argv)}\n{result.output}"
        for flag in ("--output", "-o"):
            if flag in argv:
                assert (folder / argv[argv.index(flag) + 1]).exists(), f"{block.id}: {flag} was not written"


@pytest.fixture(scope="module")
def tiny_pages(tmp_path_factory) -> Pages:
    from deception_core.testing.tiny_models import save_tiny_model

    model = save_tiny_model(tmp_path_factory.mktemp("docs-tiny-model"), "llama", n_layers=18)
    return Pages(tmp_path_factory, str(model), ["--max-tokens", "4"])


@pytest.fixture(scope="module")
def embedded_pages(tmp_path_factory) -> Pages:
    return Pages(tmp_path_factory, EMBEDDED, [])


@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
def test_block_runs_on_a_tiny_model(block: Block, tiny_pages: Pages, monkeypatch) -> None:
    tiny_pages.run(block, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
def test_block_runs_on_the_embedded_model(block: Block, embedded_pages: Pages, monkeypatch) -> None:
    embedded_pages.run(block, monkeypatch)


# -- blocks that are checked, not run -------------------------------------------------------------------------------


def slurm_array_environment(code: str) -> dict[str, str]:
    """The variables Slurm gives the first task of the script's ``#SBATCH --array=A-B[:S]``."""
    for line in code.splitlines():
        if line.startswith("#SBATCH") and "--array=" in line:
            spec = line.split("--array=", 1)[1].split()[0]
            span, _, step = spec.partition(":")
            first, _, last = span.partition("-")
            count = (int(last) - int(first)) // int(step or 1) + 1
            return {"SLURM_ARRAY_TASK_ID": first, "SLURM_ARRAY_TASK_MIN": first, "SLURM_ARRAY_TASK_COUNT": str(count),
                    "SLURM_ARRAY_TASK_STEP": step or "1"}
    return {}


def validate_deception(argv: list[str]) -> int:
    """The exit code the command line gives ``argv`` before any work: click parses it, and a ``run``
    goes through the checks that need neither the model nor the network (config, scenarios, judge,
    component settings, model id)."""
    from deception_core.cli import cli
    from deception_core.model.spec import ModelSpec
    from deception_core.pipeline.validate import check_component_settings
    from deception_core.plan.plan import select_scenarios
    from deception_core.plugins import get_registry

    name, *args = argv[1:]
    command = cli.get_command(click.Context(cli), name)
    assert command is not None, name
    try:
        context = command.make_context(name, list(args))
        if name == "run":
            from deception_core.base.registry import Kind
            from deception_core.cli.run import config_from_command_line

            config = config_from_command_line(context, dict(context.params))
            registry = get_registry()
            select_scenarios(config, registry)
            registry.get(Kind.EVALUATOR, config.evaluator).load().check_environment()
            check_component_settings(config, registry)
            ModelSpec.parse(config.model)
    except (click.UsageError, UsageError) as error:
        print(f"deception {' '.join(argv[1:])}: {error}")
        return 2
    return 0


def check_shell(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    syntax = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert syntax.returncode == 0, f"{block.id}: not valid bash: {syntax.stderr}"
    for name, value in slurm_array_environment(block.code).items():
        monkeypatch.setenv(name, value)
    for command in commands(block.code):
        if command.argv[0] == "export":
            for assignment in command.argv[1:]:
                name, _, value = assignment.partition("=")
                monkeypatch.setenv(name, value)
            continue
        for name, value in command.env.items():
            monkeypatch.setenv(name, value)
        if is_deception(command.argv):
            assert validate_deception(command.argv) == 0, f"{block.id}: {' '.join(command.argv)} is refused"
        for word in command.argv[1:]:
            if word.split("/", 1)[0] in ("scripts", "examples", "constraints"):
                assert (ROOT / word).exists(), f"{block.id}: {word} does not exist in the repository"


def check_config(block: Block) -> None:
    if block.language == "json":
        data = json.loads(block.code)
    else:
        import yaml

        data = yaml.safe_load(block.code)
    config = RunConfig.from_dict(data, source=block.id, given=tuple(data))
    assert config.to_dict()["model"] == data.get("model", config.model)


def check_toml(block: Block) -> None:
    data = tomllib.loads(block.code)
    entry_points = data["project"]["entry-points"]["deception"]
    template = tomllib.loads((ROOT / "examples" / "deception-plugin-template" / "pyproject.toml").read_text())
    assert entry_points == template["project"]["entry-points"]["deception"]


@pytest.mark.parametrize("block", CHECKED, ids=_ids(CHECKED))
def test_block_is_valid(block: Block, monkeypatch) -> None:
    reset_plugin_set()
    try:
        if block.kind == CHECK_SHELL:
            check_shell(block, monkeypatch)
        elif block.kind == CONFIG:
            check_config(block)
        elif block.kind == TOML:
            check_toml(block)
        else:
            assert block.kind == OUTPUT
            assert block.code.strip(), f"{block.id}: an empty block"
    finally:
        reset_plugin_set()


def test_every_block_is_covered() -> None:
    """Each block is of a kind the suite runs or checks, and the docs hold runnable blocks of both languages."""
    kinds = {b.kind for b in BLOCKS}
    assert kinds <= {RUN_PYTHON, RUN_SHELL, CHECK_SHELL, CONFIG, TOML, OUTPUT}
    assert {RUN_PYTHON, RUN_SHELL} <= kinds


def test_validation_refuses_what_the_command_line_refuses(monkeypatch) -> None:
    """The check of pod and cluster blocks gives the command line's exit code 2 for bad input."""
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(name, raising=False)
    assert validate_deception(["deception", "run", "--no-such-flag"]) == 2
    assert validate_deception(["deception", "run", "--shard", "auto"]) == 2  # outside a Slurm array task
    assert validate_deception(["deception", "run", "--scenario-name", "no_such_scenario"]) == 2
    assert validate_deception(["deception", "run", "--sae-layer", "12"]) == 2  # needs --sae
    assert validate_deception(["deception", "run", "--scenario-name", "control"]) == 0


def test_the_docs_count_the_scenarios_the_command_lists() -> None:
    """Concepts and the cloud-guide page say how many scenarios `deception scenarios` lists."""
    from deception_core.cli import cli

    scenarios_part = CliRunner().invoke(cli, ["scenarios"]).output.split("\n\n")[0]  # statement sets follow
    listed = [line for line in scenarios_part.splitlines() if line.strip() and not line.startswith(" ")]
    assert len(listed) == 8
    assert "lists the eight registered scenarios" in (ROOT / "docs" / "concepts.md").read_text()

"""The `deception` group loads a command's module only when that command is looked up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from deception_core.cli import CORE_COMMANDS, _Group, cli

#: the modules of the core's commands (`deception_core.cli.run`, ...)
COMMAND_MODULES = sorted({lazy.import_path.split(":")[0] for lazy in CORE_COMMANDS.values()})


def _modules_loaded_by(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after ``deception *argv``."""
    script = textwrap.dedent(f"""
        import sys
        from deception_core.cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        print("\\n".join(sorted(sys.modules)), file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(done.stderr.split())


@pytest.fixture(scope="module")
def modules_after_group_help() -> set[str]:
    return _modules_loaded_by(["--help"])


def test_the_groups_help_does_not_import_numpy(modules_after_group_help) -> None:
    assert "numpy" not in modules_after_group_help


def test_the_groups_help_imports_none_of_the_commands_modules(modules_after_group_help) -> None:
    assert sorted(modules_after_group_help & set(COMMAND_MODULES)) == []


def test_a_commands_help_imports_that_commands_module_only() -> None:
    loaded = _modules_loaded_by(["saes", "--help"])
    assert sorted(loaded & set(COMMAND_MODULES)) == ["deception_core.cli.saes"]


@pytest.mark.parametrize("name", sorted(CORE_COMMANDS))
def test_each_lazy_entry_loads_a_command_of_its_name(name: str) -> None:
    assert CORE_COMMANDS[name].load().name == name


@pytest.mark.parametrize("name", sorted(CORE_COMMANDS))
def test_each_summary_is_the_first_paragraph_of_its_commands_help(name: str) -> None:
    command = CORE_COMMANDS[name].load()
    first_paragraph = (command.help or "").split("\n\n")[0]
    assert CORE_COMMANDS[name].summary.split() == first_paragraph.split()


def test_the_groups_help_is_the_same_before_and_after_the_commands_load() -> None:
    group = _Group(name="deception", callback=cli.callback, params=list(cli.params))
    result = CliRunner().invoke(group, ["--help"], terminal_width=80)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lazy = result.output
    context = click.Context(group)
    for name in group.list_commands(context):
        group.get_command(context, name)
    assert CliRunner().invoke(group, ["--help"], terminal_width=80).output == lazy

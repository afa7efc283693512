"""Every command has a test of its default path through the command line, and this registry says which.

A command added to the `deception` group without an entry here fails `test_every_command_is_registered`.
A registered test must exist, must not be skipped, must name its command and must turn none of the
command's switches (boolean flags such as ``--no-analyze``, ``--no-tokens``, ``--json``, ``--pipeline``):
value options (``--model``, ``--output``, sizes) are its input, a switch would leave the default path.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import click
import pytest

from deception_core.cli import cli

TESTS = Path(__file__).resolve().parents[1]

#: command -> the tests ("file::function", under tests/) that run its default path and check its output
DEFAULT_PATH_TESTS: dict[str, tuple[str, ...]] = {
    "run": ("cli/test_default_paths.py::test_run_default_path_labels_analyses_and_reports",),
    "analyze": ("report/test_analyze_progress.py::test_analyze_prints_a_line_per_stage",),
    "capture": ("cli/test_default_paths.py::test_capture_default_path_writes_a_dataset_of_the_statements",),
    "relabel": ("cli/test_default_paths.py::test_relabel_default_path_prints_the_new_labels_and_the_analysis_tables",
                "cli/test_default_paths.py::test_relabel_default_path_twice_answers_from_the_cache"),
    "report": ("cli/test_default_paths.py::test_report_default_path_writes_the_page_with_every_reply",),
    "export": ("cli/test_default_paths.py::test_export_default_path_writes_parquet_one_row_per_sample",),
    "merge": ("core/test_merge_pods.py::test_two_scenario_pods_merge_into_the_one_run_dataset_and_probe_results",),
    "bench": ("core/test_capture_bench.py::test_bench_times_every_stage_on_a_tiny_model",),
    "saes": ("cli/test_default_paths.py::test_saes_default_path_lists_releases_offline",),
    "checkpoints": ("cli/test_default_paths.py::test_checkpoints_default_path_lists_the_area_of_a_run",),
    "scenarios": ("core/test_cli.py::test_scenarios_lists_the_six_with_descriptions_and_plugin",),
    "plugins": ("cli/test_default_paths.py::test_plugins_default_path_prints_a_table_of_plugins",),
}


def command_names(group: click.Group, prefix: str = "") -> list[str]:
    """Every leaf command of ``group``, sub-groups walked (``"group sub"``)."""
    names = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            names += command_names(command, f"{prefix}{name} ")
        else:
            names.append(f"{prefix}{name}")
    return names


def _command(name: str) -> click.Command:
    command: click.Command = cli
    for part in name.split():
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), part)
        assert found is not None, name
        command = found
    return command


def switches(command: click.Command) -> set[str]:
    """The command's boolean flags, every spelling (``--no-analyze``, ``--json``, ...)."""
    return {opt for p in command.params if isinstance(p, click.Option) and p.is_flag for opt in (*p.opts, *p.secondary_opts)}


@cache
def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _fixture_strings(path: Path, function: ast.FunctionDef) -> set[str]:
    """String constants of the module-level fixtures the test takes (its CLI call may live in one)."""
    functions = _functions(path)
    names = {a.arg for a in function.args.args}
    return set().union(*(_strings(functions[n]) for n in names if n in functions))


def test_every_command_is_registered() -> None:
    commands = command_names(cli)
    assert len(commands) >= 12
    assert sorted(set(commands) - set(DEFAULT_PATH_TESTS)) == []
    assert sorted(set(DEFAULT_PATH_TESTS) - set(commands)) == []


def test_the_registry_lists_every_command_with_its_tests(capsys) -> None:
    """Prints the registry (pytest -s shows it): the closing note of the suite's coverage by command."""
    with capsys.disabled():
        width = max(map(len, DEFAULT_PATH_TESTS))
        print()
        for name in command_names(cli):
            for test in DEFAULT_PATH_TESTS[name]:
                print(f"  {name:<{width}}  {test}")
    assert all(DEFAULT_PATH_TESTS[name] for name in command_names(cli))


@pytest.mark.parametrize("name", sorted(DEFAULT_PATH_TESTS))
def test_registered_tests_run_the_default_path(name: str) -> None:
    command = _command(name)
    flags = switches(command)
    for entry in DEFAULT_PATH_TESTS[name]:
        file, _, function_name = entry.partition("::")
        path = TESTS / file
        assert path.is_file(), entry
        function = _functions(path).get(function_name)
        assert function is not None, f"{entry}: no such test function"
        decorators = {ast.unparse(d) for d in function.decorator_list}
        assert not {d for d in decorators if "skip" in d or "slow" in d or "gpu" in d}, entry
        strings = _strings(function) | _fixture_strings(path, function)
        assert name.split()[-1] in strings, f"{entry} does not invoke {name!r}"
        assert strings & flags == set(), f"{entry} turns a switch of {name!r}"


def test_switches_are_found_for_a_command_that_has_them() -> None:
    """Positive control of the switch check above: `run` has its skip switches, `report` its --no-tokens."""
    assert {"--no-analyze", "--no-report"} <= switches(_command("run"))
    assert "--no-tokens" in switches(_command("report"))
    assert "--json" in switches(_command("plugins"))

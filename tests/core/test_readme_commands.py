"""The README's commands stay true: the quick start is the nox demo, and its flags parse."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from deception_core.cli.run import config_from_command_line
from deception_core.cli.run import run as run_command

ROOT = Path(__file__).resolve().parents[2]


def readme_command(marker: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    line = next(b for b in blocks if marker in b)
    return shlex.split(line.split("&&", 1)[1])


def noxfile_quickstart() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "QUICKSTART")
    return ast.literal_eval(node.value)


def test_readme_quick_start_is_the_nox_demo() -> None:
    command = readme_command("deception run")
    assert command[0] == ".venv/bin/deception"
    assert command[1:] == noxfile_quickstart()[1:]


def test_readme_quick_start_flags_parse_into_a_valid_config() -> None:
    args = readme_command("deception run")[2:]
    context = run_command.make_context("run", args)
    config = config_from_command_line(context, dict(context.params))
    assert config.model == "embedded:gemma-3-270m"
    assert config.label_policy == "rule"
    assert set(config.scenario_names) == {"info_withholding", "capability_bluff"}


def test_readme_test_command_runs_pytest() -> None:
    assert readme_command("pytest")[-2:] == ["-m", "pytest"]

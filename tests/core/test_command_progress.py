"""Every long command shows a progress bar with a rate and an ETA on a terminal, and none when piped.

`deception capture` runs in a subprocess whose stderr is a pseudo-terminal (and then a pipe);
`relabel`, `merge`, `export --activations` and `report` run through the CLI with stderr taken for a
terminal (`deception_core.ui.progress.on_terminal`) and as it is under the test runner (not one).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_plugin import load_tiny, plugin_set, run_config

from deception_core import InterpretabilityRunner
from deception_core.cli import cli

#: a tqdm bar: "desc: 100%|...| n/total [elapsed<remaining, rate]" (rate as "12.3unit/s" or "1.2s/unit")
BAR = r"{desc}: +\d+%\|[^|]*\| *\d+/\d+ \[\d\d:\d\d<\d\d:\d\d, *[\d.]+(?:\w+/s|s/\w+)[^\]]*\]"


def _bar(desc: str) -> re.Pattern[str]:
    return re.compile(BAR.format(desc=re.escape(desc)))


def _statements(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"text": f"Statement number {i} is {'true' if i % 2 else 'false'}.",
                                        "label": "honest" if i % 2 else "deceptive"}) + "\n" for i in range(n)))
    return path


def _capture_args(data: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "deception_core", "capture", str(data), "--model", str(model), "--output", str(out),
            "--device", "cpu", "--dtype", "float32", "--batch-size", "50", "--layers", "1"]


def _run_on_a_terminal(args: list[str], timeout: float = 300.0) -> tuple[int, str]:
    """Run ``args`` with stderr on a pseudo-terminal; its exit code and everything written there."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal's size: 120 columns
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_capture_of_1000_statements_shows_a_bar_on_a_terminal_and_none_when_piped(tiny_model_dir, tmp_path) -> None:
    data = _statements(tmp_path / "statements.jsonl", 1000)
    code, terminal = _run_on_a_terminal(_capture_args(data, tiny_model_dir, tmp_path / "tty"))
    assert code == 0, terminal
    assert _bar("capture").search(terminal), terminal[-2000:]
    assert "1000/1000" in terminal
    piped = subprocess.run(_capture_args(data, tiny_model_dir, tmp_path / "piped"), capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
    assert piped.returncode == 0, piped.stderr
    assert "captured 1000 samples" in piped.stdout
    assert "capture:" not in piped.stderr
    assert "%|" not in piped.stderr


@pytest.fixture(scope="module")
def echo_run(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("progress") / "run"
    InterpretabilityRunner(run_config(tiny_model_dir, out, analyze=False, report=False), plugins=plugin_set(),
                           model=load_tiny(tiny_model_dir)).run()
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


COMMANDS = {  # command -> (arguments after the run folder, the bar's description)
    "relabel": (lambda run, tmp: ["relabel", str(run), "--evaluator", "echo-judge", "--label-policy", "rule",
                                  "--no-analyze"], "judging"),
    "merge": (lambda run, tmp: ["merge", str(tmp / "merged"), str(run)], "merge"),
    "export": (lambda run, tmp: ["export", str(run), "--format", "parquet", "-o", str(tmp / "s.parquet"),
                                 "--activations", "all"], "activation columns"),
    "report": (lambda run, tmp: ["report", str(run)], "report"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_long_command_shows_a_bar_on_a_terminal(command, echo_run, tmp_path, cli_with_plugin,
                                                     monkeypatch) -> None:
    import deception_core.ui.progress as progress

    arguments, desc = COMMANDS[command]
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    result = cli_with_plugin.invoke(cli, arguments(_copy(echo_run, tmp_path), tmp_path))
    assert result.exit_code == 0, result.output
    assert _bar(desc).search(result.stderr), result.stderr[-2000:]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_long_command_draws_no_bar_when_piped(command, echo_run, tmp_path, cli_with_plugin) -> None:
    arguments, desc = COMMANDS[command]
    result = cli_with_plugin.invoke(cli, arguments(_copy(echo_run, tmp_path), tmp_path))
    assert result.exit_code == 0, result.output
    assert f"{desc}:" not in result.stderr
    assert "%|" not in result.stderr

"""The example third-party plugin registers through the entry-point group and shows up in the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "deception-plugin-template"


def _register_like_pip(site: Path) -> dict[str, str]:
    """Write the dist-info pip would write for the template (metadata + entry points) on a path."""
    dist = site / "deception_plugin_template-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: deception-plugin-template\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[deception]\ncard_bluff = deception_plugin_template.plugin\n")
    path = os.pathsep.join([str(site), str(TEMPLATE / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _deception(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deception_core.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_template_scenario_is_listed_with_its_plugin(tmp_path) -> None:
    env = _register_like_pip(tmp_path)
    listing = _deception(env, "scenarios")
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith("card_bluff"))
    assert line.rstrip().endswith("[card_bluff]")
    plugins = {row["name"]: row for row in json.loads(_deception(env, "plugins", "--json").stdout)}
    assert plugins["card_bluff"]["version"] == "0.1.0"
    assert plugins["card_bluff"]["components"] == [{"kind": "scenario", "name": "card_bluff"}]


def test_template_plugin_module_is_light(tmp_path) -> None:
    env = _register_like_pip(tmp_path)
    code = ("import sys, deception_plugin_template.plugin\n"
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr

"""The README is a landing page: short, the two commands, one picture, and the docs one click away."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_at_most_150_lines() -> None:
    assert len(README.splitlines()) <= 150


def test_the_readme_has_exactly_the_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    assert [block.split("&&", 1)[0].strip() for block in blocks] == ["bash scripts/bootstrap.sh",
                                                                     "bash scripts/bootstrap.sh --dev"]


def test_the_cloud_guide_page_and_the_cli_reference_are_one_click_away() -> None:
    links = set(re.findall(r"\]\(([^)#\s]+)", README))
    assert {"docs/tutorials/cloud-guide.md", "docs/reference/cli.md"} <= links


def test_the_picture_is_one_the_docs_script_makes() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures == ["docs/assets/quickstart/report.png"]

"""The READMEs' relative links lead to files that exist (the docs site's own links are checked by
the strict build, `nox -s docs`; the READMEs are outside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = [ROOT / "README.md", *sorted((ROOT / "packages").glob("*/README.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(path.read_text()) if "://" not in target and not target.startswith("#")]


@pytest.mark.parametrize("readme", READMES, ids=[str(p.relative_to(ROOT)) for p in READMES])
def test_relative_links_lead_to_files(readme: Path) -> None:
    missing = [t for t in relative_links(readme) if not (readme.parent / t.split("#", 1)[0]).exists()]
    assert missing == []

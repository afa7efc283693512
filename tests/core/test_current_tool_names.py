"""Messages name other tools' commands and settings in their current form, never a retired one."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: retired spelling -> what replaced it (huggingface_hub 1.x renamed its CLI; transformers 5 reads only HF_HOME)
RETIRED = {"huggingface-cli": "hf (e.g. `hf auth login`)", "TRANSFORMERS_CACHE": "HF_HOME"}


def _sources() -> list[Path]:
    return sorted(p for p in (ROOT / "packages").glob("*/src/**/*") if p.suffix in {".py", ".json", ".toml", ".sh"})


def test_the_package_sources_are_found() -> None:
    names = {p.name for p in _sources()}
    assert "spec.py" in names  # the module whose hub error tells the user how to log in


@pytest.mark.parametrize("retired", sorted(RETIRED))
def test_no_package_source_names_a_retired_spelling(retired: str) -> None:
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in _sources()
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
            if retired in line]
    assert hits == [], f"{retired} is retired, use {RETIRED[retired]}: {hits}"


def test_the_hub_error_names_the_current_login_command() -> None:
    text = (ROOT / "packages/deception-core/src/deception_core/model/spec.py").read_text()
    assert "hf auth login" in text

"""`deception report`: one self-contained HTML page per run (transcripts, labels, probe scores, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deception_core.report.inputs import REPORT_FILE


def write_report(run_dir: str | Path, output: str | Path | None = None, *, tokenizer: Any | None = None,
                 decode_tokens: bool = True) -> Path:
    """Write ``report.html`` (or ``output``) for the run folder ``run_dir``; returns its path."""
    from deception_core.dataset.store import atomic_write_text
    from deception_core.report.html import render
    from deception_core.report.inputs import gather

    inputs = gather(run_dir, tokenizer=tokenizer, decode_tokens=decode_tokens)
    path = Path(output) if output else Path(run_dir) / REPORT_FILE
    atomic_write_text(path, render(inputs))
    return path


__all__ = ["REPORT_FILE", "write_report"]

"""`deception report`: one self-contained HTML page per run (transcripts, labels, probe scores, plots)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deception_core.outputs.policy import check_output_file, publish_file
from deception_core.report.html import render
from deception_core.report.inputs import REPORT_FILE, gather


def write_report(run_dir: str | Path, output: str | Path | None = None, *, tokenizer: Any | None = None,
                 decode_tokens: bool = True, overwrite: bool = False) -> Path:
    """Write ``report.html`` (or ``output``) for the run folder ``run_dir``; returns its path.

    The run's own ``report.html`` is replaced; another ``output`` goes through the output policy (not
    inside a run or dataset folder, an existing file only with ``overwrite``)."""

    own = Path(run_dir) / REPORT_FILE
    path = check_output_file(output, overwrite, own=own) if output else own
    inputs = gather(run_dir, tokenizer=tokenizer, decode_tokens=decode_tokens)
    is_own = Path(os.path.abspath(path)) == Path(os.path.abspath(own))
    publish_file(path, render(inputs).encode(), overwrite or is_own)
    return path


__all__ = ["REPORT_FILE", "write_report"]

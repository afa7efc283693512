"""Run the registered analyses on a dataset (after a run, and for `deception analyze`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deception_core.registry import Kind, Registry

log = logging.getLogger("deception")


def run_analyses(registry: Registry, dataset: Any, out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    from deception_core.progress import progress_bar

    reports: dict[str, Any] = {}
    entries = list(registry.entries(Kind.ANALYSIS))
    bar = progress_bar(len(entries), "analyses", "analysis")
    for entry in entries:
        log.info("analysis %s", entry.name)
        bar.set_postfix_str(entry.name)
        report = entry.load()().run(dataset, Path(out_dir), options)
        reports[entry.name] = {"results": report.results, "table": report.table, "files": report.files}
        bar.update(1)
    bar.close()
    return reports

"""Run the registered analyses on a dataset (after a run, and for `deception analyze`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deception_core.registry import Kind, Registry

log = logging.getLogger("deception")


def run_analyses(registry: Registry, dataset: Any, out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    reports: dict[str, Any] = {}
    for entry in registry.entries(Kind.ANALYSIS):
        log.info("analysis %s", entry.name)
        report = entry.load()().run(dataset, Path(out_dir), options)
        reports[entry.name] = {"results": report.results, "table": report.table, "files": report.files}
    return reports

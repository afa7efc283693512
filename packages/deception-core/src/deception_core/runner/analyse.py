"""Run the registered analyses on a dataset (after a run, and for `deception analyze`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deception_core.dataset.store import Dataset
from deception_core.records import AnalysisReport, ProbeDirection
from deception_core.registry import Kind, Registry

log = logging.getLogger("deception")


def run_analyses(registry: Registry, dataset: Dataset, out_dir: Path, options: dict[str, Any]) -> dict[str, AnalysisReport]:
    """Every registered analysis's report, by analysis name, in registration order."""
    from deception_core.progress import progress_bar

    reports: dict[str, AnalysisReport] = {}
    entries = list(registry.entries(Kind.ANALYSIS))
    bar = progress_bar(len(entries), "analyses", "analysis")
    for entry in entries:
        log.info("analysis %s", entry.name)
        bar.set_postfix_str(entry.name)
        reports[entry.name] = entry.load()().run(dataset, Path(out_dir), options)
        bar.update(1)
    bar.close()
    return reports


def chosen_direction(reports: dict[str, AnalysisReport]) -> ProbeDirection | None:
    """The direction the first analysis (in registration order) that chose one exposes."""
    return next((r.direction for r in reports.values() if r.direction is not None), None)


def chosen_alternatives(reports: dict[str, AnalysisReport]) -> tuple[ProbeDirection, ...]:
    """The ranked fallback read-outs of the analysis whose direction `chosen_direction` returns."""
    return next((r.alternatives for r in reports.values() if r.direction is not None), ())

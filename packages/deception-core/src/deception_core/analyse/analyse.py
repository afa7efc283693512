"""Run the registered analyses on a dataset (after a run, and for `deception analyze`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from deception_core.base.records import ANALYSES_MANIFEST, AnalysisReport, ProbeDirection
from deception_core.base.registry import Kind, Registry
from deception_core.base.types import JSONObject, JSONValue
from deception_core.config.components import build
from deception_core.contracts.analysis import Analysis
from deception_core.store.dataset import Dataset, atomic_write_text, sha256_file
from deception_core.ui.progress import progress_bar

log = logging.getLogger("deception")


#: run-wide values that an analysis setting of the same name takes unless its parameters give one
RUN_DEFAULTS = ("seed", "jobs")


def analysis_params(analysis_class: type, params: Mapping[str, JSONValue], options: Mapping[str, JSONValue]) -> JSONObject:
    """``params`` with the run-wide ``seed`` and ``jobs`` filled in where the analysis's settings have them."""
    settings_class = getattr(analysis_class, "settings_class", None)
    if settings_class is None:
        return dict(params)
    fields = attrs.fields_dict(settings_class)
    defaults = {k: options[k] for k in RUN_DEFAULTS if k in fields and options.get(k) is not None}
    return {**defaults, **params}


def build_analyses(registry: Registry, options: Mapping[str, JSONValue],
                   components: Mapping[str, Mapping[str, JSONValue]] | None = None) -> dict[str, Analysis]:
    """Every registered analysis, built with its settings (``components.analysis.<name>``, structured
    once by `deception_core.config.components.build`, unknown keys refused) before any of them runs."""

    analyses: dict[str, Analysis] = {}
    for entry in registry.entries(Kind.ANALYSIS):
        analysis_class = entry.load()
        params = analysis_params(analysis_class, (components or {}).get(entry.name, {}), options)
        analyses[entry.name] = build(Kind.ANALYSIS, entry.name, analysis_class, params)
    return analyses


def run_analyses(registry: Registry, dataset: Dataset, out_dir: Path, options: JSONObject,
                 components: Mapping[str, Mapping[str, JSONValue]] | None = None) -> dict[str, AnalysisReport]:
    """Every registered analysis's report, by analysis name, in registration order. ``options`` holds
    the run-wide inputs (``seed``, ``jobs``, ``train_from``, ``control``, and ``datasets``: those
    already read and verified, by path); ``components`` each analysis's own parameters by name."""

    analyses = build_analyses(registry, options, components)
    reports: dict[str, AnalysisReport] = {}
    bar = progress_bar(len(analyses), "analyses", "analysis")
    for name, analysis in analyses.items():
        log.info("analysis %s", name)
        bar.set_postfix_str(name)
        reports[name] = analysis.run(dataset, Path(out_dir), options)
        bar.update(1)
    bar.close()
    write_manifest(Path(out_dir), reports)
    return reports


def matrix_analyses(registry: Registry, options: Mapping[str, JSONValue],
                    components: Mapping[str, Mapping[str, JSONValue]] | None = None) -> dict[str, Analysis]:
    """The registered analyses that compute a generalisation matrix (``Analysis.has_matrix``), built
    with their settings; checked before any dataset is read."""
    return {name: a for name, a in build_analyses(registry, options, components).items() if a.has_matrix}


def run_matrix(analyses: Mapping[str, Analysis], datasets: Mapping[str, Dataset], control: Dataset | None,
               out_dir: Path, options: JSONObject) -> dict[str, AnalysisReport]:
    """Each analysis's generalisation matrix over ``datasets`` (name -> dataset), by analysis name;
    writes ``analyses.json`` (the files and their checksums) as `run_analyses` does."""
    reports: dict[str, AnalysisReport] = {}
    for name, analysis in analyses.items():
        log.info("matrix %s over %d datasets", name, len(datasets))
        report = analysis.run_matrix(datasets, control, Path(out_dir), options)
        if report is not None:
            reports[name] = report
    write_manifest(Path(out_dir), reports)
    return reports


def write_manifest(out_dir: Path, reports: Mapping[str, AnalysisReport]) -> Path:
    """``analyses.json``: each analysis's files by role, so readers find them without naming an analysis,
    and the sha256 of every file the analyses wrote, so readers refuse files changed afterwards."""
    files = [name for report in reports.values() for name in (*report.files, *report.outputs.values())]
    return write_analysis_manifest(out_dir, {name: dict(report.outputs) for name, report in reports.items()}, files)


def write_analysis_manifest(out_dir: Path, outputs: Mapping[str, Mapping[str, str]], files: Iterable[str]) -> Path:
    """``analyses.json`` from each analysis's files by role (``outputs``) and the files to checksum
    (paths in ``out_dir`` or relative to it; those that do not exist are left out)."""
    import json

    out_dir = Path(out_dir)
    sums: dict[str, str] = {}
    for name in files:
        path = Path(name) if Path(name).is_absolute() else out_dir / name
        try:
            relative = path.relative_to(out_dir).as_posix()
        except ValueError:
            continue  # not in the output folder (an analysis that wrote elsewhere): nothing to record
        if path.is_file() and not path.is_symlink():
            sums[relative] = sha256_file(path)
    manifest = {"analyses": {name: {"outputs": dict(roles)} for name, roles in outputs.items()},
                "sha256": dict(sorted(sums.items()))}
    path = out_dir / ANALYSES_MANIFEST
    atomic_write_text(path, json.dumps(manifest, indent=2))
    return path


def chosen_direction(reports: dict[str, AnalysisReport]) -> ProbeDirection | None:
    """The direction the first analysis (in registration order) that chose one exposes."""
    return next((r.direction for r in reports.values() if r.direction is not None), None)


def chosen_alternatives(reports: dict[str, AnalysisReport]) -> tuple[ProbeDirection, ...]:
    """The ranked fallback read-outs of the analysis whose direction `chosen_direction` returns."""
    return next((r.alternatives for r in reports.values() if r.direction is not None), ())

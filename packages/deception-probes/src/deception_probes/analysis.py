"""The ``probes`` analysis: writes ``probe_results.json``, the plots and the saved probes into the output directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deception_core import (
    REPLY_STATES_OPTION,
    Analysis,
    AnalysisReport,
    JSONObject,
    JSONValue,
    atomic_write_text,
    json_array,
    json_object,
    read_dataset,
)
from deception_probes import plots
from deception_probes.engine import run_probe_analysis
from deception_probes.matrix import MATRIX_JSON, MatrixChoice, generalisation_matrix, matrix_table, write_matrix
from deception_probes.report import headline_table
from deception_probes.scores import SCORES_FILE, TOKEN_SCORES_FILE
from deception_probes.settings import ProbeSettings
from deception_probes.transfer import TRANSFER_FILE, load_named, run_transfer, transfer_table
from deception_probes.transfer_scores import TRANSFER_SCORES_FILE, write_transfer_scores

if TYPE_CHECKING:
    from deception_core import Dataset

RESULTS_FILE = "probe_results.json"
PLOT_FILES = {"auroc_by_layer": "probe_auroc_by_layer.png", "roc_best": "probe_roc_best.png",
              "transfer": "probe_transfer_matrix.png"}


def schema_path() -> Path:
    """The JSON Schema of ``probe_results.json`` shipped with the package."""
    return Path(__file__).with_name("schemas") / "probe_results.schema.json"


def load_schema() -> JSONObject:
    schema: JSONObject = json.loads(schema_path().read_text())
    return schema


def single_blas_thread() -> AbstractContextManager[object]:
    """Run the analysis with one BLAS thread, whatever the data size.

    Its linear algebra is mostly matrix-vector products and reductions (memory-bound), which gain
    little from a second thread; and on CPUs shared with other jobs, OpenBLAS threads spin-waiting
    for a busy core made the analysis 3-10x slower (measured at 2,000 and 10,000 samples x 2304).
    """
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


class ProbeAnalysis(Analysis):
    """The probe analysis (``probes``) that ``deception run`` and ``deception analyze`` run on a dataset."""
    name = "probes"
    settings_class = ProbeSettings
    has_matrix = True

    def __init__(self, settings: ProbeSettings | None = None) -> None:
        self.settings = settings if settings is not None else ProbeSettings()

    def run(self, dataset: Dataset, out_dir: Path, options: dict[str, Any]) -> AnalysisReport:
        settings = self.settings
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with single_blas_thread():
            outcome = run_probe_analysis(dataset, out_dir, settings, options.get(REPLY_STATES_OPTION),
                                         _control(options))
        results = outcome.results
        files: list[str] = []
        if settings.plots:
            made = {
                "auroc_by_layer": plots.auroc_by_layer(results, out_dir / PLOT_FILES["auroc_by_layer"]),
                "roc_best": (plots.roc_best(results, outcome.best_scores, outcome.y, out_dir / PLOT_FILES["roc_best"])
                             if outcome.best_scores is not None and outcome.y is not None else None),
                "transfer": plots.transfer_heatmap(results, out_dir / PLOT_FILES["transfer"]),
            }
            results["plots"] = [{"kind": k, "file": p.name if p else None,
                                 "status": "written" if p else "not drawn: nothing computable to plot"}
                                for k, p in made.items()]
            files += [str(p) for p in made.values() if p]
        table_tail = ""
        if options.get("train_from") or options.get("control"):
            transfer_files, table_tail = self._transfer(dataset, out_dir, options, settings, results)
            files += transfer_files
        probes_dir = out_dir / "probes"
        if probes_dir.is_dir() and results["status"] == "ok":
            files += sorted(str(p) for p in probes_dir.iterdir() if p.suffix in (".safetensors", ".json"))
        files += [str(out_dir / name) for name in (results.get("scores") or {}).get("files", [])
                  if str(out_dir / name) not in files]
        results["files"] = [str(Path(f).relative_to(out_dir)) for f in files]
        path = out_dir / RESULTS_FILE
        atomic_write_text(path, json.dumps(results, indent=2, allow_nan=False))
        files.insert(0, str(path))
        table = headline_table(results) + table_tail
        return AnalysisReport(results=results, table=table, files=files, direction=outcome.direction,
                              alternatives=outcome.alternatives, outputs=output_roles(results))

    def run_matrix(self, datasets: Mapping[str, Dataset], control: Dataset | None, out_dir: Path,
                   options: dict[str, Any]) -> AnalysisReport:
        """The generalisation matrix (`deception_probes.matrix`): ``options["layer"]`` and
        ``options["position"]`` fix where every probe reads (None: the best by validation)."""
        choice = MatrixChoice(layer=options.get("layer"), position=options.get("position"))
        with single_blas_thread():
            result = generalisation_matrix(datasets, control, self.settings, choice)
        paths = write_matrix(result, Path(out_dir))
        return AnalysisReport(results=result, table=matrix_table(result), files=[str(p) for p in paths],
                              outputs={"matrix": MATRIX_JSON})

    @staticmethod
    def _transfer(dataset: Dataset, out_dir: Path, options: dict[str, Any], settings: ProbeSettings,
                  results: dict[str, Any]) -> tuple[list[str], str]:
        """``options["train_from"]`` (dataset paths) and ``options["control"]``: see `deception_probes.transfer`;
        ``options["datasets"]``: those already read, by path. The run's samples scored by each
        training dataset's probe go to `transfer_scores.TRANSFER_SCORES_FILE`; where the run trained no
        probe of its own, the first one's scores become its score file (``results["scores"]``)."""

        known = options.get("datasets") or {}  # already read and verified by `deception analyze`
        train_from = load_named(list(options.get("train_from") or []), known)
        path = options.get("control")
        control = None if not path else known[path] if path in known else read_dataset(path)
        with single_blas_thread():
            outcome = run_transfer(dataset, train_from, control, settings)
        written = write_transfer_scores(dataset, outcome, train_from, control, settings.fpr, out_dir,
                                        as_run_scores=results.get("scores") is None)
        result = outcome.result
        files = [str(out_dir / TRANSFER_FILE)]
        if written is not None:
            result["run_scores"] = {"file": TRANSFER_SCORES_FILE, "by_train": written["by_train"]}
            files += [str(out_dir / str(name)) for name in json_array(written["files"])]
            if written["run_scores"] is not None:
                results["scores"] = written["run_scores"]
        atomic_write_text(out_dir / TRANSFER_FILE, json.dumps(result, indent=2, allow_nan=False, default=str))
        return files, "\n" + transfer_table(result)


def _control(options: dict[str, Any]) -> Dataset | None:
    """The control dataset of ``options["control"]`` (a path) for the score scale: the one `deception
    analyze` already read and verified (``options["datasets"]``), else read now; None without one."""
    path = options.get("control")
    if not path:
        return None
    known = options.get("datasets") or {}
    if path in known:
        read: Dataset = known[path]
        return read

    return read_dataset(path)


def output_roles(results: Mapping[str, JSONValue]) -> dict[str, str]:
    """The files the report reads, by role: the results JSON and the score files actually written."""

    written = set(json_array(json_object(results.get("scores") or {}).get("files", [])))
    roles = {"results": RESULTS_FILE}
    roles.update({role: name for role, name in (("scores", SCORES_FILE), ("token_scores", TOKEN_SCORES_FILE))
                  if name in written})
    return roles

"""Files a run writes beside its dataset: config.json, plugins.json, run.log, the dataset meta and the summary."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from deception_core.base.records import AnalysisReport
from deception_core.base.types import JSONObject
from deception_core.config.resolved import ResolvedRun
from deception_core.outputs.files import human_size, label_table
from deception_core.outputs.policy import QuietFileHandler
from deception_core.play.accounts import accounts_table
from deception_core.play.calls import call_summary
from deception_core.plugins import PluginSet
from deception_core.store.dataset import Dataset, atomic_write_text

if TYPE_CHECKING:
    from deception_core.model.surface import Model
    from deception_core.play.session import ModelFacts


def setup_logging(out_dir: Path, verbose: bool) -> logging.Handler:
    """``run.log`` in the output directory; ``--verbose`` lowers the level to DEBUG."""
    logger = logging.getLogger("deception")
    level = logging.DEBUG if verbose else logging.INFO
    logger.setLevel(level)

    handler = QuietFileHandler(out_dir / "run.log", mode="a", encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return handler


def plugin_versions(plugins: PluginSet) -> list[dict[str, str | None]]:
    return [
        {"name": i.name, "distribution": i.distribution, "version": i.version, "module": i.module, "error": i.error}
        for i in plugins.plugins.values()
    ]


def write_run_header(out_dir: Path, run: ResolvedRun, model: Model | ModelFacts, plugins: PluginSet,
                     judge: JSONObject | None = None) -> None:
    """``config.json`` (the config as the run used it, and what was resolved) and ``plugins.json``."""
    assert run.placement is not None, "the header is written once the model has loaded"
    resolved = {
        "config": run.config_dict(),
        "resolved": {
            "scenarios": list(run.scenarios),
            "layers": list(run.layers),
            "capture_backend": run.capture_backend,
            "device": run.placement.device,
            "dtype": run.placement.dtype,
            "batch_size": run.placement.batch_size,
            "model": model.describe(),
            "judge": judge,
            "identity_sha256": run.identity_hash,
        },
    }
    atomic_write_text(out_dir / "config.json", json.dumps(resolved, indent=2, default=str))
    atomic_write_text(out_dir / "plugins.json", json.dumps(plugin_versions(plugins), indent=2))


def dataset_meta(run: ResolvedRun, model: Model | ModelFacts, plugins: PluginSet) -> JSONObject:
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model.describe(),
        "layers": list(run.layers),
        "positions": [p.value for p in run.positions],
        "capture_backend": run.capture_backend,
        "result_config": run.result_config(),
        "scenarios": list(run.scenarios),
        "plugins": {i.name: i.version for i in plugins.plugins.values()},
    }


def summary_text(dataset: Dataset, analyses: dict[str, AnalysisReport], causal: Mapping[str, object], size: int) -> str:
    parts = [f"dataset: {len(dataset)} samples, {len(dataset.trials)} trials, {human_size(size)} on disk",
             call_summary(dataset.trials, dataset.meta.result_config or {}), "", label_table(dataset)]

    accounts = accounts_table(dataset.samples)
    if accounts:
        parts += ["", accounts]
    for name, report in analyses.items():
        parts += ["", f"[{name}]", report.table]
    for name, result in causal.items():
        line = result.get("summary") if isinstance(result, dict) else None
        parts += ["", f"[causal {name}] {line or ''}"]
    return "\n".join(parts) + "\n"

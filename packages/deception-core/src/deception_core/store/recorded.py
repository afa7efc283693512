"""The config a finished run recorded: its config.json, or the dataset's own record of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deception_core.base.errors import UsageError
from deception_core.store.dataset import Dataset


def recorded_run_config(run_dir: Path, dataset: Dataset) -> dict[str, Any]:
    """The run's config (model, judge, policy, seed, analysis settings) from ``config.json``, or from the
    dataset's meta when the folder has none; a damaged ``config.json`` is refused (exit 2)."""
    path = run_dir / "config.json"
    if not path.exists():
        return dict(dataset.meta.result_config or {}, model=dataset.meta.model.get("id"))
    fix = ("relabel reads the run's model, judge and label policy there. Restore it from a copy of the run, "
           "or move it away to use the dataset's own record of the model")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file (not UTF-8); {fix}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}; truncated?); {fix}") from None
    except OSError as error:
        raise UsageError(f"{path} cannot be read ({error.strerror}); {fix}") from None
    config = data.get("config", data) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise UsageError(f"{path} does not hold a run's config (a JSON object); {fix}")
    return dict(config)

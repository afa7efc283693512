"""deception_causal: patching, directional ablation, steering during generation, and faithfulness.

Importing this package is light; torch is imported by the modules that intervene on a model.
The result format of every ``causal_<test>.json`` is documented by the JSON Schema returned by
`schema_path()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load_schema", "schema_path"]


def schema_path() -> Path:
    """The JSON Schema of ``causal_<test>.json`` shipped with the package."""
    return Path(__file__).with_name("schemas") / "causal_result.schema.json"


def load_schema() -> dict[str, Any]:
    """The JSON Schema of ``causal_<test>.json`` as a dict (validate a result file against it)."""
    schema: dict[str, Any] = json.loads(schema_path().read_text())
    return schema

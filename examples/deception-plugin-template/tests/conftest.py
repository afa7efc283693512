"""Let the template's tests run from a source checkout, installed or not."""

import sys
from pathlib import Path

try:
    import deception_plugin_template  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

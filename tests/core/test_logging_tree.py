"""Every module logs under the `deception` logger, so run.log and --verbose reach all of them."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("deception_core", "deception_scenarios", "deception_probes", "deception_causal")


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield name
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".testing" not in info.name and not info.name.endswith("__main__"):
                yield info.name


def module_loggers(module: ModuleType) -> list[logging.Logger]:
    return [value for value in vars(module).values() if isinstance(value, logging.Logger)]


def misplaced(module: ModuleType) -> list[str]:
    """Names of the module's loggers that are not `deception` or below it."""
    return [lg.name for lg in module_loggers(module) if not (lg.name == "deception" or lg.name.startswith("deception."))]


#: only the modules that create a logger can get its name wrong
LOGGING_MODULES = [name for name in _modules() if module_loggers(importlib.import_module(name))]


def test_the_modules_that_log_are_found() -> None:
    assert len(LOGGING_MODULES) >= 15
    assert "deception_core.pipeline.runner" in LOGGING_MODULES


@pytest.mark.parametrize("name", LOGGING_MODULES)
def test_module_loggers_sit_under_the_deception_logger(name) -> None:
    assert misplaced(importlib.import_module(name)) == []


def test_a_logger_outside_the_tree_is_reported() -> None:
    """Positive control of the check above."""
    module = ModuleType("planted")
    module.log = logging.getLogger("planted.module")  # type: ignore[attr-defined]
    module.fine = logging.getLogger("deception.fine")  # type: ignore[attr-defined]
    assert misplaced(module) == ["planted.module"]

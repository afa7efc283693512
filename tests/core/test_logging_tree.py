"""Every module logs under the `deception` logger, so run.log and --verbose reach all of them."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import pytest

PACKAGES = ("deception_core", "deception_scenarios", "deception_probes", "deception_causal")


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield name
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".testing" not in info.name and not info.name.endswith("__main__"):
                yield info.name


@pytest.mark.parametrize("name", list(_modules()))
def test_module_loggers_sit_under_the_deception_logger(name) -> None:
    module = importlib.import_module(name)
    loggers = [value for value in vars(module).values() if isinstance(value, logging.Logger)]
    for logger in loggers:
        assert logger.name == "deception" or logger.name.startswith("deception."), (name, logger.name)

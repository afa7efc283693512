"""Fixtures of the scenario tests."""

from __future__ import annotations

import pytest

from deception_scenarios._plugin import SCENARIOS


@pytest.fixture(params=sorted(SCENARIOS))
def scenario_name(request) -> str:
    """Each built-in scenario in turn."""
    return request.param

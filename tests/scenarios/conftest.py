"""Fixtures of the scenario tests."""

from __future__ import annotations

import pytest

from deception_scenarios._plugin import SCENARIOS


@pytest.fixture(params=sorted(SCENARIOS))
def scenario_name(request) -> str:
    """Each built-in scenario in turn."""
    return request.param


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run far faster on one thread when the CPUs are shared (modules opt in)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

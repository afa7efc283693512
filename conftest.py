"""Suite-wide check: a test that passes must have asserted something.

Counted while the test body runs (fixtures' own checks do not count for the test that uses them):

- every passing ``assert`` (pytest's ``pytest_assertion_pass`` hook; ``enable_assertion_pass_hook``
  in pyproject.toml; the test helper modules are rewritten too, see `HELPER_MODULES`);
- every ``pytest.raises`` / ``pytest.warns``;
- every call of the array and frame comparisons of numpy, torch and pandas (`COMPARISONS`).

A test that passes with none of these fails with "asserted nothing". A test whose point is that
something does not raise says so with ``@pytest.mark.asserts_nothing("why")``; the terminal summary
lists those exceptions and the count of tests checked.
"""

from __future__ import annotations

import functools
import importlib
from collections import Counter
from typing import Any

import pytest

#: helper modules of the tests whose plain ``assert`` statements count (rewritten like test modules)
HELPER_MODULES = ("reliability_plugin", "report_helpers", "scenario_helpers", "causal_planted")
pytest.register_assert_rewrite(*HELPER_MODULES)

#: (module, attribute) of the comparison helpers that count as an assertion when called
COMPARISONS = (
    ("numpy.testing", "assert_array_equal"), ("numpy.testing", "assert_allclose"),
    ("numpy.testing", "assert_array_almost_equal"), ("numpy.testing", "assert_equal"),
    ("numpy.testing", "assert_almost_equal"), ("numpy.testing", "assert_array_less"),
    ("torch.testing", "assert_close"),
    ("pandas.testing", "assert_frame_equal"), ("pandas.testing", "assert_series_equal"),
    ("pytest", "raises"), ("pytest", "warns"),
)

_counts: Counter[str] = Counter()
_current: list[str] = []
_exempt: dict[str, str] = {}
_checked: list[str] = []
_vacuous: list[str] = []
_hook_calls = [0]


def _counting(function: Any) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _current:
            _counts[_current[-1]] += 1
        return function(*args, **kwargs)

    wrapper.__counts_as_assertion__ = True  # type: ignore[attr-defined]
    return wrapper


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asserts_nothing(reason): the test's point is that its body does not raise")
    for module_name, name in COMPARISONS:
        module = importlib.import_module(module_name)
        function = getattr(module, name)
        if not getattr(function, "__counts_as_assertion__", False):
            setattr(module, name, _counting(function))


def pytest_assertion_pass(item: pytest.Item, lineno: int, orig: str, expl: str) -> None:
    _hook_calls[0] += 1
    if _current:
        _counts[_current[-1]] += 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _current.append(item.nodeid)
    try:
        return (yield)
    finally:
        _current.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if call.when != "call" or not report.passed:
        return report
    marker = item.get_closest_marker("asserts_nothing")
    if marker is not None:
        _exempt[item.nodeid] = str(marker.args[0] if marker.args else marker.kwargs.get("reason", ""))
        return report
    _checked.append(item.nodeid)
    if _counts[item.nodeid] == 0:
        _vacuous.append(item.nodeid)
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} asserted nothing: no assert passed, no pytest.raises/warns and no array or "
                           "frame comparison ran in its body. Check a result, or mark it "
                           "@pytest.mark.asserts_nothing(reason) if its point is only that it does not raise.")
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _checked and not _exempt:
        return
    if _checked and _hook_calls[0] == 0 and terminalreporter.config.getini("enable_assertion_pass_hook"):
        terminalreporter.write_line("assertion check: no assertion hook call at all: stale rewritten bytecode? "
                                    "delete __pycache__/*-pytest-*.pyc and run again", red=True)
    terminalreporter.write_line(f"assertion check: {len(_checked) - len(_vacuous)} passing test(s) asserted something"
                                f"{'' if not _vacuous else f', {len(_vacuous)} asserted nothing'}; "
                                f"{len(_exempt)} exempt (asserts_nothing)")
    for nodeid, reason in sorted(_exempt.items()):
        terminalreporter.write_line(f"  exempt: {nodeid}: {reason}")

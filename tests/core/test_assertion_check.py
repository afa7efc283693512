"""The suite-wide check (conftest.py at the repository root) fails a passing test that asserted nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PLANTED = '''
import numpy as np
import pytest


def test_vacuous():
    x = 1


def test_loop_that_never_runs():
    for value in []:
        assert value


def test_asserts():
    assert 1 + 1 == 2


def test_raises():
    with pytest.raises(ZeroDivisionError):
        1 / 0


def test_array_comparison():
    np.testing.assert_array_equal([1, 2], [1, 2])


@pytest.mark.asserts_nothing("its point is that it does not raise")
def test_exempt():
    pass
'''


def test_a_passing_test_that_asserted_nothing_fails(tmp_path) -> None:
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nenable_assertion_pass_hook = true\n")
    (tmp_path / "test_planted.py").write_text(PLANTED)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout
    failed = sorted(line.split("::")[1].split()[0] for line in done.stdout.splitlines() if line.startswith("FAILED"))
    assert failed == ["test_loop_that_never_runs", "test_vacuous"]
    assert "2 failed, 4 passed" in done.stdout
    assert ("assertion check: 3 passing test(s) asserted something, 2 asserted nothing; 1 exempt (asserts_nothing)"
            in done.stdout)
    assert "exempt: test_planted.py::test_exempt: its point is that it does not raise" in done.stdout

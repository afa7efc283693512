"""The trial bar advances with every batch, so its ETA does not jump when a wave's trials finish."""

from __future__ import annotations

import pytest

from deception_core.ui.progress import TrialProgress


def test_trial_bar_moves_evenly_through_a_wave_then_lands_on_the_exact_count() -> None:
    progress = TrialProgress(total=32, initial=0, calls_per_trial_guess=8)
    progress.start_wave(16)
    seen = []
    for _step in range(8):  # 16 games x 8 calls, one batch of 16 calls per step
        progress.calls_done(16)
        seen.append(progress.bar.n)
    assert seen[:7] == pytest.approx([2, 4, 6, 8, 10, 12, 14])
    assert seen[7] == pytest.approx(0.95 * 16)  # never claims the wave before its trials are collected
    for _trial in range(16):
        progress.trial_done(8)
    assert progress.bar.n == pytest.approx(16)
    progress.close()


def test_second_wave_uses_the_calls_per_trial_measured_in_the_first() -> None:
    progress = TrialProgress(total=20, initial=0, calls_per_trial_guess=2)
    progress.start_wave(10)
    for _trial in range(10):
        progress.trial_done(5)  # the guess was 2; the games made 5 calls each
    progress.start_wave(10)
    progress.calls_done(25)
    assert progress.bar.n == pytest.approx(15)  # 25 calls = 5 trials' worth at 5 calls per trial
    progress.close()


def test_a_bar_inside_another_writes_no_cursor_moves_off_a_terminal(monkeypatch) -> None:
    import io
    import sys

    from deception_core.ui.progress import progress_bar

    stream = io.StringIO()  # a log file: not a terminal
    monkeypatch.setattr(sys, "stderr", stream)
    outer = progress_bar(4, "trials", "trial")
    inner = progress_bar(3, "judging", "utterance")
    inner.update(3)
    inner.close()
    outer.update(4)
    outer.close()
    assert "\x1b[A" not in stream.getvalue()


def test_off_a_terminal_a_long_stage_prints_a_plain_line_at_the_interval(capsys, monkeypatch) -> None:
    from deception_core.ui import progress

    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    clock = iter([0.0, 30.0, 61.0, 90.0, 125.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = progress.progress_bar(8, "trials", "trial")
    for _ in range(4):
        bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["trials: 2.0/8 trial(s) (25%), 1:01 elapsed, about 3:03 left",
                     "trials: 4.0/8 trial(s) (50%), 2:05 elapsed, about 2:05 left"]


def test_off_a_terminal_a_stage_shorter_than_the_interval_prints_nothing(capsys, monkeypatch) -> None:
    from deception_core.ui import progress

    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    bar = progress.progress_bar(8, "trials", "trial")
    for _ in range(8):
        bar.update(1)
    bar.close()
    assert capsys.readouterr().err == ""

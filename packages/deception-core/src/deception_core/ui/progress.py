"""Progress bars (counts, rate and ETA on stderr) for every long stage of every command.

A bar is drawn only when stderr is a terminal: piped into a file or another program (a log, `nohup`,
CI) a command draws no bar, so logs hold messages rather than redrawn bars. A stage that runs longer
than a minute off a terminal prints one plain line a minute instead (count, elapsed time, time
left), so a pod's `nohup` log is never silent for the hours a large model's run takes; a stage that
ends sooner prints nothing. ETAs come from the
average rate since the stage began (``smoothing=0``), not from the last update: trials finish in
bursts when batches end, and a rate from the last burst alone would swing the ETA by the batch size.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Protocol

#: seconds between the plain progress lines printed off a terminal (``DECEPTION_PROGRESS_INTERVAL``)
LINE_INTERVAL_S = 60.0


class ProgressBar(Protocol):
    """What every bar `progress_bar` returns can do (a tqdm bar, a periodic line or a silent stand-in)."""

    n: float

    def update(self, n: float = 1) -> bool | None: ...
    def close(self) -> None: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...


class _NullBar:
    """Draws nothing; counts like a bar, so code that reads ``n`` behaves the same on and off a terminal."""

    def __init__(self, initial: float = 0) -> None:
        self.n = initial

    def update(self, n: float = 1) -> None:
        self.n += n

    def close(self) -> None: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...


class _PeriodicLine(_NullBar):
    """Off a terminal: one plain line on stderr at most every `interval` seconds, none before the first."""

    def __init__(self, total: float, desc: str, unit: str, initial: float = 0, interval: float | None = None) -> None:
        super().__init__(initial)
        self.total, self.desc, self.unit, self.initial = total, desc, unit, initial
        self.interval = line_interval() if interval is None else interval
        self.started = self.last = time.monotonic()

    def update(self, n: float = 1) -> None:
        super().update(n)
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            print(self.line(now - self.started), file=sys.stderr, flush=True)

    def line(self, elapsed: float) -> str:
        done = self.n - self.initial
        left = (self.total - self.n) * elapsed / done if done > 0 else None
        eta = "unknown" if left is None else _clock(left)
        return (f"{self.desc}: {self.n:.1f}/{self.total:g} {self.unit}(s) ({100 * self.n / self.total:.0f}%), "
                f"{_clock(elapsed)} elapsed, about {eta} left")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def line_interval() -> float:
    """Seconds between progress lines off a terminal: ``DECEPTION_PROGRESS_INTERVAL`` or 60."""
    try:
        return max(1.0, float(os.environ.get("DECEPTION_PROGRESS_INTERVAL", LINE_INTERVAL_S)))
    except ValueError:
        return LINE_INTERVAL_S


def progress_bar(total: float | None, desc: str, unit: str = "it", initial: float = 0, fractional: bool = False) -> ProgressBar:
    """A tqdm bar on stderr when stderr is a terminal; off a terminal a line a minute for a stage that
    lasts that long; a silent stand-in when tqdm is missing or when ``total`` is 0 or unknown.
    ``fractional`` shows the count with one decimal (bars advanced by parts of a unit)."""
    if not total:
        return _NullBar(initial)
    if not on_terminal():
        return _PeriodicLine(total, desc, unit, initial)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NullBar(initial)
    bar: ProgressBar = tqdm(total=total, initial=initial, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True,
                            smoothing=0, bar_format=_FRACTIONAL if fractional else None, mininterval=0.1)
    return bar


def on_terminal() -> bool:
    """Whether stderr is a terminal (where bars are drawn)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


_FRACTIONAL = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"


class TrialProgress:
    """Trials done, advanced by fractions of a trial as the generation calls of a wave return.

    Trials of a wave finish together, so counting whole trials would leave the bar still for a
    whole wave and then jump. Each returned call advances the bar by one call's share of a trial
    (the mean calls per trial seen so far, or ``calls_per_trial_guess`` before any trial ended),
    never past 95 % of the wave; the wave's end sets the exact count.
    """

    def __init__(self, total: int, initial: int, calls_per_trial_guess: float) -> None:
        self.bar = progress_bar(total, "trials", "trial", initial, fractional=True)
        self.exact = float(initial)
        self.guess = max(1.0, calls_per_trial_guess)
        self.finished_calls = 0
        self.finished_trials = 0
        self.wave_trials = 0
        self.wave_progress = 0.0

    @property
    def calls_per_trial(self) -> float:
        return self.finished_calls / self.finished_trials if self.finished_trials else self.guess

    def _show(self, value: float) -> None:
        self.bar.update(value - self.bar.n)

    def start_wave(self, n_trials: int) -> None:
        self.wave_trials = n_trials
        self.wave_progress = 0.0

    def calls_done(self, n_calls: int) -> None:
        if not self.wave_trials:
            return
        self.wave_progress = min(0.95 * self.wave_trials, self.wave_progress + n_calls / self.calls_per_trial)
        self._show(self.exact + self.wave_progress)

    def trial_done(self, n_calls: int) -> None:
        self.finished_calls += n_calls
        self.finished_trials += 1
        self.exact += 1
        self.wave_progress = max(0.0, self.wave_progress - 1)
        self._show(self.exact + self.wave_progress)

    def close(self) -> None:
        self.bar.close()

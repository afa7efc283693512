"""Throughput of the whole pipeline (`deception bench --pipeline`): what a user waits for.

For each batch size, a real run (games with theory of mind and counterpart, the judge, collection
and the dataset write; no probe analysis) is timed end to end, and every generation call it makes
is recorded: its prompt, its batch and the reply tokens it produced. The pipeline's figure is all
reply tokens over the run's wall time. Its baseline is bare HF ``generate`` (no hooks, no games)
replaying exactly the run's batches: the same prompts, batched together as the run batched them,
each batch generating as many tokens as its longest reply (so the baseline does the same useful
work; ``min_new_tokens`` keeps it from stopping at an early EOS). The ratio is pipeline tok/s over
bare tok/s at the same batch size.

With ``repeats`` above 1, every batch size is run and replayed once per round, the rounds
interleaved (batch 1, 4, 16, then again), and the medians of the seconds are reported: a machine
that slows down for a minute then moves every row a little instead of one row a lot.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from deception_core.base.types import JSONObject
from deception_core.bench.capture import _PeakMemory
from deception_core.config.run import RunConfig
from deception_core.contracts.capture import (
    CaptureBackend,
    CaptureResult,
    GenerationRequest,
    Intervention,
    Sampling,
)
from deception_core.engine.backend import EngineCaptureBackend
from deception_core.pipeline import InterpretabilityRunner
from deception_core.play.batching import resolve_batch_size

if TYPE_CHECKING:
    import torch

    from deception_core.model.surface import Model

#: the first scenarios in the registered ranking that each timed run plays
SCENARIOS = 2


class RecordingBackend(CaptureBackend):
    """A capture backend that passes every call to ``inner`` and records each batch it served."""

    name = "recording"

    def __init__(self, inner: CaptureBackend) -> None:
        super().__init__(inner.model, inner.spec)
        self.inner = inner
        self.batches: list[list[tuple[tuple[int, ...], int]]] = []

    def generate(self, requests: Sequence[GenerationRequest], sampling: Sampling,
                 interventions: Sequence[Intervention] = ()) -> list[CaptureResult]:
        results = self.inner.generate(requests, sampling, interventions)
        self.batches.append([(tuple(r.prompt_ids), len(result.reply_ids)) for r, result in zip(requests, results, strict=True)])
        return results

    def close(self) -> None:
        self.inner.close()


@attrs.define
class PipelineResult:
    batch_size: int
    requested: str
    trials: int
    calls: int
    tokens: int
    seconds: float
    bare_seconds: float
    peak_bytes: int
    rounds: tuple[tuple[float, float], ...] = ()  # (pipeline seconds, bare seconds) of each repeat
    #: with an engine other than hf: seconds of the capture pass (teacher-forced replay) and of waiting for the server
    capture_seconds: float | None = None
    engine_seconds: float | None = None

    @property
    def capture_share(self) -> float | None:
        """The capture pass's share of the run's wall time (engines other than hf)."""
        return None if self.capture_seconds is None else self.capture_seconds / self.seconds

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def bare_tok_per_s(self) -> float:
        return self.tokens / self.bare_seconds if self.bare_seconds else float("nan")

    @property
    def trials_per_minute(self) -> float:
        return 60 * self.trials / self.seconds


def replay_bare(loaded: Model, batches: Sequence[Sequence[tuple[tuple[int, ...], int]]]) -> float:
    """Seconds bare ``generate`` takes over ``batches`` (each to its longest reply)."""
    device = loaded.input_device
    seconds = 0.0
    for batch in batches:
        longest = max(n for _, n in batch)
        if longest == 0:
            continue
        _sync(device)
        started = time.perf_counter()
        loaded.bare_generate([prompt for prompt, _ in batch], longest, fixed_length=True)
        _sync(device)
        seconds += time.perf_counter() - started
    return seconds


def _sync(device: torch.device | str) -> None:
    if getattr(device, "type", device) == "cuda":
        import torch

        torch.cuda.synchronize()


def run_pipeline_benchmark(
    loaded: Model,
    model_name: str,
    *,
    batch_sizes: Sequence[int | str],
    trials: int = 2,
    max_rounds: int = 1,
    new_tokens: int = 24,
    repeats: int = 1,
    progress: Callable[[str], None] = lambda message: None,
    engine: str = "hf",
    engine_url: str | None = None,
) -> list[PipelineResult]:
    """Per batch size (``"auto"`` allowed): ``repeats`` timed runs, each followed by its bare replay.

    ``engine``/``engine_url``: the runs' generation engine (`deception_core.contracts.engine`); an
    engine other than hf gets as many requests in flight as the batch size, and its rows add the
    capture pass's share of the wall time."""

    sizes = [resolve_batch_size(requested, loaded, new_tokens) for requested in batch_sizes]
    timings: list[list[_Timed]] = [[] for _ in batch_sizes]
    with tempfile.TemporaryDirectory(prefix="deception-bench-") as scratch:
        for repeat in range(repeats):
            for k, (requested, size) in enumerate(zip(batch_sizes, sizes, strict=True)):
                output = Path(scratch) / f"batch-{requested}-{repeat}"
                timed = _timed_run(loaded, model_name, size, trials, max_rounds, new_tokens, output, engine, engine_url)
                label = f"pipeline batch {requested}" + (f" (repeat {repeat + 1} of {repeats})" if repeats > 1 else "")
                progress(f"{label}: {timed.tokens} tokens in {timed.seconds:.1f} s; replaying with bare generate")
                timed.bare_seconds = replay_bare(loaded, timed.batches)
                progress(f"{label}: {timed.tokens / timed.seconds:.1f} tok/s, bare {timed.tokens / timed.bare_seconds:.1f} tok/s")
                timings[k].append(timed)
    results = []
    for requested, size, runs in zip(batch_sizes, sizes, timings, strict=True):
        first = runs[0]
        if any(run.tokens != first.tokens for run in runs):  # seeded trials: every repeat writes the same replies
            progress(f"pipeline batch {requested}: repeats produced different token counts "
                     f"{[run.tokens for run in runs]}; the first is reported")
        results.append(PipelineResult(
            size, str(requested), first.trials, first.calls, first.tokens,
            statistics.median(run.seconds for run in runs), statistics.median(run.bare_seconds for run in runs),
            max(run.peak_bytes for run in runs), tuple((run.seconds, run.bare_seconds) for run in runs),
            None if first.capture_seconds is None else statistics.median(run.capture_seconds or 0.0 for run in runs),
            None if first.engine_seconds is None else statistics.median(run.engine_seconds or 0.0 for run in runs)))
    return results


@attrs.define
class _Timed:
    trials: int
    calls: int
    tokens: int
    seconds: float
    peak_bytes: int
    batches: list[list[tuple[tuple[int, ...], int]]]
    bare_seconds: float = 0.0
    capture_seconds: float | None = None
    engine_seconds: float | None = None


def _timed_run(loaded: Model, model_name: str, batch_size: int, trials: int, max_rounds: int, new_tokens: int,
               output: Path, engine: str = "hf", engine_url: str | None = None) -> _Timed:
    """One whole run (no analysis), timed end to end, with every generation batch it served."""

    device = "cuda" if next(loaded.hf_model.parameters()).is_cuda else "cpu"
    components = {} if engine == "hf" else {"engine": {engine: {"concurrency": max(1, batch_size)}}}
    config = RunConfig(model=model_name, mode="both", scenarios=SCENARIOS, trials=trials, max_rounds=max_rounds,
                       max_tokens=new_tokens, label_policy="rule", analyze=False, batch_size=batch_size,
                       device=device, dtype=loaded.dtype, output=str(output), engine=engine, engine_url=engine_url,
                       components=components)
    recorders: list[RecordingBackend] = []

    def wrap(backend: CaptureBackend) -> CaptureBackend:
        recorders.append(RecordingBackend(backend))
        return recorders[-1]

    gc.collect()
    with _PeakMemory(device) as memory:
        started = time.perf_counter()
        run = InterpretabilityRunner(config, model=loaded, trial_sink=None, wrap_backend=wrap).run()
        _sync(device)
        seconds = time.perf_counter() - started
    batches = recorders[0].batches
    inner = recorders[0].inner
    split = (inner.capture_seconds, inner.engine_seconds) if isinstance(inner, EngineCaptureBackend) else (None, None)
    return _Timed(len(run.dataset.trials), sum(map(len, batches)), sum(n for batch in batches for _, n in batch),
                  seconds, memory.peak, batches, 0.0, *split)


def format_pipeline_table(results: Sequence[PipelineResult], header: str = "") -> str:
    """Rows in the layout of `format_table`, plus trials per minute."""
    first = results[0].tok_per_s if results else float("nan")
    lines = [header] if header else []
    lines.append(f"{'stage':<24}{'batch':>6}{'tokens':>8}{'tok/s':>10}{'ratio':>8}{'vs bare b1':>12}{'peak MB':>10}"
                 f"{'bare tok/s':>12}{'trials/min':>12}" + (f"{'capture %':>11}" if _split(results) else ""))
    bare_one = results[0].bare_tok_per_s if results else float("nan")
    for r in results:
        stage = "pipeline" if r.requested != "auto" else "pipeline (auto)"
        lines.append(f"{stage:<24}{r.batch_size:>6}{r.tokens:>8}{r.tok_per_s:>10.1f}{r.tok_per_s / r.bare_tok_per_s:>8.2f}"
                     f"{r.tok_per_s / bare_one:>12.2f}{r.peak_bytes / 2**20:>10.0f}{r.bare_tok_per_s:>12.1f}"
                     f"{r.trials_per_minute:>12.1f}"
                     + (f"{100 * (r.capture_share or 0.0):>11.1f}" if _split(results) else ""))
    lines.append("ratio: pipeline tok/s (all reply tokens of the run over its wall time) over bare generate replaying "
                 "the run's own batches; vs bare b1: over bare generate at the first batch size; "
                 f"pipeline tok/s at the last batch size is {results[-1].tok_per_s / first:.2f}x the first's"
                 if results else "")
    if _split(results):
        lines.append("capture %: the teacher-forced capture pass's share of the run's wall time (the engine "
                     "generated every reply; bare generate is the in-process model's)")
    return "\n".join(lines)


def _split(results: Sequence[PipelineResult]) -> bool:
    return any(r.capture_seconds is not None for r in results)


def pipeline_json(results: Sequence[PipelineResult]) -> list[JSONObject]:
    return [
        {"stage": "pipeline" if r.requested != "auto" else "pipeline (auto)", "batch_size": r.batch_size,
         "requested_batch_size": r.requested, "trials": r.trials, "calls": r.calls, "tokens": r.tokens,
         "seconds": r.seconds, "tok_per_s": r.tok_per_s, "bare_seconds": r.bare_seconds,
         "bare_tok_per_s": r.bare_tok_per_s, "ratio_to_bare": r.tok_per_s / r.bare_tok_per_s,
         "trials_per_minute": r.trials_per_minute, "peak_bytes": r.peak_bytes,
         "repeats": [{"seconds": pipeline, "bare_seconds": bare} for pipeline, bare in r.rounds],
         "capture_seconds": r.capture_seconds, "engine_seconds": r.engine_seconds, "capture_share": r.capture_share}
        for r in results
    ]

"""Throughput of the capture backends against bare HF ``generate``, on one loaded model.

Every stage generates the same greedy replies to the same prompts (``new_tokens`` each, batches
of ``batch`` prompts with left padding). Stages are interleaved round by round (the order
alternates each round) and the median over rounds is reported, so a machine whose load drifts
biases no stage. Each figure is also given as a ratio to bare ``generate`` at the same batch size.
Capture backends feed the last reply token once more (one extra decoding step per call), which is
part of their cost and is counted against them.

Peak memory is per stage: on CUDA ``max_memory_allocated`` since the stage began; on CPU the
highest resident set size sampled every 5 ms while the stage ran (so it includes the model and,
for ``hybrid``, its second copy).
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from deception_core.base.types import JSONObject
from deception_core.contracts.capture import CaptureBackend, CaptureSpec, GenerationRequest, Sampling

if TYPE_CHECKING:
    from types import TracebackType

    from transformers import PreTrainedTokenizerBase

    from deception_core.model.surface import Model

PROMPTS = (
    "I will not go lower than sixty points. This is my final offer, and",
    "My minimum is thirty points, so I can accept forty if you",
    "We can finish the project in twelve days. Deal or no deal? I think",
    "The car has a small oil leak but runs well; the price is 9000 dollars because",
    "I promise to cooperate. Let us both choose COOPERATE, since",
    "Yes, we are still allies, I will vote with you in the next round and",
    "Negotiator: I propose a 60/40 split. Counterpart: I accept only if",
    "Once upon a time, there was a little",
)


@attrs.define
class StageResult:
    stage: str
    batch_size: int
    tokens: int = 0
    tok_per_s: list[float] = attrs.field(factory=list)
    peak_bytes: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.tok_per_s) if self.tok_per_s else float("nan")


class _PeakMemory:
    """Peak memory while the ``with`` block runs (CUDA allocator, or sampled CPU RSS)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0

    def __enter__(self) -> _PeakMemory:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            import psutil

            process = psutil.Process()
            self._stop = threading.Event()
            self.peak = process.memory_info().rss

            def sample() -> None:
                while not self._stop.wait(0.005):
                    self.peak = max(self.peak, process.memory_info().rss)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak = int(torch.cuda.max_memory_allocated())
        else:
            self._stop.set()
            self._thread.join()


def prompt_ids(tokenizer: PreTrainedTokenizerBase, n: int) -> list[tuple[int, ...]]:
    return [tuple(tokenizer(PROMPTS[i % len(PROMPTS)])["input_ids"]) for i in range(n)]


def _bare_generate(loaded: Model, prompts: Sequence[tuple[int, ...]], batch: int, new_tokens: int) -> int:
    """Plain ``generate`` (no hooks), greedy; returns the reply tokens produced (before EOS)."""
    stop = loaded.stop_tokens
    produced = 0
    for start in range(0, len(prompts), batch):
        out = loaded.bare_generate(prompts[start : start + batch], new_tokens)
        for row in out.tolist():
            produced += next((i for i, t in enumerate(row) if t in stop.eos_ids or t == stop.pad_id), len(row))
    return produced


def _backend_generate(backend: CaptureBackend, prompts: Sequence[tuple[int, ...]], batch: int, new_tokens: int) -> int:
    produced = 0
    for start in range(0, len(prompts), batch):
        requests = [GenerationRequest(p, new_tokens, seed=0) for p in prompts[start : start + batch]]
        produced += sum(len(r.reply_ids) for r in backend.generate(requests, Sampling(temperature=0)))
    return produced


def run_benchmark(
    loaded: Model,
    *,
    layers: Sequence[int],
    batch_sizes: Sequence[int] = (1, 4, 16),
    backend_batch_sizes: Sequence[int] = (1,),
    backends: Sequence[str] = ("transformer-lens", "hybrid"),
    n_prompts: int | None = None,
    new_tokens: int = 24,
    repeats: int = 3,
    progress: Callable[[str], None] = lambda message: None,
) -> list[StageResult]:
    """Time every stage ``repeats`` times, interleaved; see the module docstring."""
    device = "cuda" if next(loaded.hf_model.parameters()).is_cuda else "cpu"
    prompts = prompt_ids(loaded.tokenizer, n_prompts or max(batch_sizes))
    factories = _backend_factories(loaded, CaptureSpec(tuple(layers)), backends)
    label = {"bare": "bare generate", "hf": f"hf capture ({len(layers)} layers)",
             "transformer-lens": "transformer-lens", "hybrid": "hybrid"}
    stages: list[tuple[str, int]] = []
    for batch in batch_sizes:
        stages += [("bare", batch), ("hf", batch)]
    for batch in backend_batch_sizes:
        stages += [(name, batch) for name in backends if name in factories]
    results = {key: StageResult(label[key[0]], key[1]) for key in stages}

    progress("warming up")
    _bare_generate(loaded, prompts[:1], 1, 4)
    _backend_generate(factories["hf"](), prompts[:1], 1, 4)
    for round_index in range(repeats):
        order = stages if round_index % 2 == 0 else _swap_pairs(stages)
        for name, batch in order:
            factory = None if name == "bare" else factories[name]
            tokens, seconds, peak = _time_stage(loaded, device, factory, prompts, batch, new_tokens)
            result = results[(name, batch)]
            result.tokens = tokens
            result.tok_per_s.append(tokens / seconds)
            result.peak_bytes = max(result.peak_bytes, peak)
            progress(f"round {round_index + 1}/{repeats}: {result.stage} batch {batch}: {tokens / seconds:.1f} tok/s")
    return list(results.values())


def _backend_factories(loaded: Model, spec: CaptureSpec, backends: Sequence[str]) -> dict[str, Callable[[], CaptureBackend]]:
    """A fresh-backend builder per stage name: ``hf`` always, the others asked for in ``backends``."""
    # the capture backends import torch: `deception --help` and `deception bench --help` stay light
    from deception_core.capture.hf import HFCaptureBackend
    from deception_core.capture.hybrid import HybridCaptureBackend
    from deception_core.capture.transformer_lens import TransformerLensCaptureBackend

    factories: dict[str, Callable[[], CaptureBackend]] = {"hf": lambda: HFCaptureBackend(loaded, spec)}
    if "transformer-lens" in backends:
        factories["transformer-lens"] = lambda: TransformerLensCaptureBackend(loaded, spec)
    if "hybrid" in backends:
        factories["hybrid"] = lambda: HybridCaptureBackend(loaded, spec)
    return factories


def _time_stage(loaded: Model, device: str, factory: Callable[[], CaptureBackend] | None,
                prompts: Sequence[tuple[int, ...]], batch: int,
                new_tokens: int) -> tuple[int, float, int]:
    """(tokens generated, seconds, peak bytes) of one timed stage; ``factory`` None: bare generate. The
    backend is built and closed outside the timed part."""
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    with _PeakMemory(device) as memory:
        backend = None if factory is None else factory()
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        if backend is None:
            tokens = _bare_generate(loaded, prompts, batch, new_tokens)
        else:
            tokens = _backend_generate(backend, prompts, batch, new_tokens)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        if backend is not None:
            backend.close()
            del backend
    return tokens, seconds, memory.peak


def _swap_pairs(stages: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Reverse each (bare, hf) pair and the backend tail, so no stage always runs first."""
    out = list(stages)
    for i in range(0, len(out) - 1, 2):
        if out[i][0] == "bare":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def format_table(results: Sequence[StageResult], header: str = "") -> str:
    bare = {r.batch_size: r.median for r in results if r.stage == "bare generate"}
    bare_one = bare[min(bare)] if bare else float("nan")
    lines = [header] if header else []
    lines.append(f"{'stage':<24}{'batch':>6}{'tokens':>8}{'tok/s':>10}{'ratio':>8}{'vs bare b1':>12}{'peak MB':>10}")
    for r in results:
        ratio = r.median / bare[r.batch_size] if r.batch_size in bare else float("nan")
        lines.append(f"{r.stage:<24}{r.batch_size:>6}{r.tokens:>8}{r.median:>10.1f}{ratio:>8.2f}"
                     f"{r.median / bare_one:>12.2f}{r.peak_bytes / 2**20:>10.0f}")
    lines.append("ratio: tok/s over bare generate at the same batch size (median of the rounds); "
                 "vs bare b1: over bare generate at the smallest batch size")
    return "\n".join(lines)


def to_json(results: Sequence[StageResult]) -> list[JSONObject]:
    bare = {r.batch_size: r.median for r in results if r.stage == "bare generate"}
    return [
        {"stage": r.stage, "batch_size": r.batch_size, "tokens": r.tokens, "tok_per_s_median": r.median,
         "tok_per_s_rounds": r.tok_per_s, "ratio_to_bare": r.median / bare[r.batch_size] if r.batch_size in bare else None,
         "peak_bytes": r.peak_bytes}
        for r in results
    ]

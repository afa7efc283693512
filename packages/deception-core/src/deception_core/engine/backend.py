"""The capture backend of a run whose replies come from an engine: engine generation, then one
batched teacher-forced pass of the in-process model over the captured calls.

The engine generates every call's reply. The replies are cut exactly as the in-process engine
cuts its own (`deception_core.model.generation.cut_reply`: end of sequence, a stop string one
token late, the token limit) and decoded by the toolkit's tokenizer, so the same tokens give the
same texts. Then the calls that ask for capture, and only those, run through the model surface
in one right-padded forward per batch (`Model.run_with_cache`) over ``prompt + reply`` ids; step 0
is the last prompt token and step ``k`` reply token ``k`` where it is the input, the positions the
``hf`` backend records during generation. The states agree with ``hf`` to float32 rounding (a
full-sequence pass against incremental decoding with a key/value cache), not bit for bit.

Calls with interventions (the causal tests) go to the in-process backend: an engine cannot steer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from deception_core.capture.hf import HFCaptureBackend
from deception_core.contracts.capture import CaptureBackend, CaptureResult, GenerationRequest, Intervention, Sampling
from deception_core.contracts.engine import Engine, EngineReply
from deception_core.model.generation import cut_reply, reply_text
from deception_core.ui.console import SHOW

log = logging.getLogger("deception.engine")


def stop_hit(tokenizer: object, reply: Sequence[int], stops: Sequence[str]) -> int:
    """The generated length at which a stop string first appears in the reply's tail (as
    `deception_core.model.decoding.DelayedStopStrings` sees it while decoding), or -1."""
    stops = [s for s in stops if s]
    if not stops:
        return -1
    window = 2 + max(len(s) for s in stops)
    for k in range(1, len(reply) + 1):
        tail = tokenizer.decode(list(reply[k - min(k, window):k]), skip_special_tokens=False)  # type: ignore[attr-defined]
        if any(stop in tail for stop in stops):
            return k
    return -1


class EngineCaptureBackend(CaptureBackend):
    """Engine replies, captured by a teacher-forced pass of the ``hf`` backend's model."""

    name = "engine"

    def __init__(self, inner: HFCaptureBackend, engine: Engine) -> None:
        super().__init__(inner.model, inner.spec)
        self.inner = inner
        self.engine = engine
        #: seconds spent waiting for the engine and in the capture pass (the pipeline benchmark's split)
        self.engine_seconds = 0.0
        self.capture_seconds = 0.0

    def generate(self, requests: Sequence[GenerationRequest], sampling: Sampling,
                 interventions: Sequence[Intervention] = ()) -> list[CaptureResult]:
        if not requests:
            return []
        if interventions:
            return self.inner.generate(requests, sampling, interventions)
        started = time.perf_counter()
        replies = self.engine.complete(requests, sampling)
        self.engine_seconds += time.perf_counter() - started
        results = [self._cut(request, reply) for request, reply in zip(requests, replies, strict=True)]
        started = time.perf_counter()
        self._capture(requests, results)
        self.capture_seconds += time.perf_counter() - started
        return results

    def _cut(self, request: GenerationRequest, reply: EngineReply) -> CaptureResult:
        tokenizer = self.model.tokenizer
        hit = stop_hit(tokenizer, reply.token_ids, request.stop)
        ids, stopped_by = cut_reply(self.model.stop_tokens, request, reply.token_ids, hit)
        if stopped_by == "max_tokens" and reply.finish_reason == "stop" and len(reply.token_ids) <= request.max_new_tokens:
            stopped_by = "eos"  # the server ended at its end-of-sequence token, which the text leaves out
        result = CaptureResult(tuple(request.prompt_ids), ids, reply_text(tokenizer, ids, request.stop), stopped_by)
        result.engine = dict(reply.record)
        return result

    def _capture(self, requests: Sequence[GenerationRequest], results: Sequence[CaptureResult]) -> None:
        rows = [i for i, request in enumerate(requests) if request.capture]
        if not rows:
            return
        sequences = [list(results[i].prompt_ids) + list(results[i].reply_ids) for i in rows]
        cache = self.model.run_with_cache(sequences, layers=self.spec.layers, batch_size=len(sequences))
        for row, states in zip(rows, cache.states, strict=True):
            start = len(results[row].prompt_ids) - 1  # step 0: the last prompt token
            steps = states[start:start + len(results[row].reply_ids) + 1]
            results[row].activations, results[row].reply_all = self.inner._positions(steps, len(results[row].reply_ids))

    def timing_line(self) -> str:
        """Where the generation time went: waiting for the engine, and the capture pass."""
        total = self.engine_seconds + self.capture_seconds
        share = self.capture_seconds / total if total else 0.0
        return (f"engine {self.engine.name}: {self.engine_seconds:.1f} s waiting for the server, capture pass "
                f"{self.capture_seconds:.1f} s ({share:.0%} of the generation time)")

    def close(self) -> None:
        log.info("%s", self.timing_line(), extra=SHOW)
        self.engine.close()
        self.inner.close()

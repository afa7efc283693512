"""The ``hf`` capture backend: PyTorch forward hooks on the decoder layers during ``generate``.

Every forward call of a hooked layer during generation records the block output at the last
sequence position: the first call (the prompt pass) gives the last prompt token, call ``k + 1``
gives the residual stream of reply token ``k`` as it is fed back in. Nothing is run twice; the
hooks only slice tensors that the generation computes anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import torch

from deception_core.base.errors import UsageError
from deception_core.base.types import Position
from deception_core.capture._decoding import DelayedStopStrings, SeededSampler, trim_at_stop
from deception_core.capture._retiring import generate_retiring, plain_generation_config
from deception_core.contracts.capture import (
    CaptureBackend,
    CaptureResult,
    GenerationRequest,
    Intervention,
    Sampling,
)
from deception_core.model.hooks import DecoderLayerHooks
from deception_core.model.loading import decoder_layers


class _LayerRecorder:
    """Apply interventions and record the last position of each watched layer per forward call."""

    def __init__(self, layers_module: Any, layers: Sequence[int], record: bool,
                 interventions: Sequence[Intervention]) -> None:
        self.layers = tuple(layers)
        self.record = record
        self.steps: dict[int, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        self.hooks = DecoderLayerHooks(layers_module, interventions, self.layers if record else (), self._keep)

    def _keep(self, layer: int, hidden: torch.Tensor) -> None:
        self.steps[layer].append(hidden[:, -1, :].detach())

    def stacked(self) -> torch.Tensor:
        """``[batch, steps, n_layers, d_model]`` of everything recorded."""
        # layers split over several GPUs record on their own devices: gather on the first one
        device = self.steps[self.layers[0]][0].device
        per_layer = [torch.stack([t.to(device) for t in self.steps[layer]], dim=1) for layer in self.layers]
        return torch.stack(per_layer, dim=2)

    def hook_steps(self) -> dict[str, torch.Tensor]:
        return {}

    def remove(self) -> None:
        self.hooks.remove()


@attrs.frozen(kw_only=True)
class HFSettings:
    """Settings of the ``hf`` backend (``components: {capture_backend: {hf: {...}}}``).

    ``retire_finished_rows``: drop rows from the batch as they finish while decoding (default), or
    ``false`` for plain ``transformers`` ``generate``, which keeps every row to the end: the same
    tokens and activations, slower on batches of uneven replies (a reference for the faster path).
    """

    retire_finished_rows: bool = True


class HFCaptureBackend(CaptureBackend):
    name = "hf"
    #: whether `CaptureSpec.hook_names` (TransformerLens hook points) can be recorded
    supports_hook_names = False
    settings_class: ClassVar[type[Any] | None] = HFSettings

    def __init__(self, model, spec, settings: HFSettings | None = None) -> None:
        super().__init__(model, spec)
        self.settings = settings or HFSettings()
        if spec.hook_names and not self.supports_hook_names:
            raise UsageError(
                f"the {self.name!r} capture backend records decoder-layer outputs only; hook points "
                f"{list(spec.hook_names)} need --capture-backend transformer-lens or hybrid"
            )
        self.hf = model.hf_model
        self.tokenizer = model.tokenizer
        self.layers_module = decoder_layers(self.hf)
        eos = self.hf.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos_ids)
        self.device = self.hf.get_input_embeddings().weight.device  # where the inputs go (first GPU of a split)
        #: drop finished rows from the batch while decoding (see `_retiring`); exact subclasses of
        #: this backend only, since others record through their own recorders
        self.retire_finished_rows = (self.settings.retire_finished_rows and type(self) is HFCaptureBackend
                                     and plain_generation_config(self.hf))

    def _batch(self, requests: Sequence[GenerationRequest]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r.prompt_ids) for r in requests)
        ids = torch.full((len(requests), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(requests), width), dtype=torch.long)
        for row, request in enumerate(requests):
            n = len(request.prompt_ids)
            ids[row, width - n:] = torch.tensor(request.prompt_ids, dtype=torch.long)
            mask[row, width - n:] = 1
        return ids.to(self.device), mask.to(self.device)

    def _make_recorder(self, record: bool, interventions: Sequence[Intervention]):
        """The object that applies interventions and records states during ``generate``."""
        return _LayerRecorder(self.layers_module, self.spec.layers, record, interventions)

    def _collect_states(self, recorder, requests, cuts) -> list[tuple[torch.Tensor | None, dict[str, torch.Tensor]]]:
        """Per row: ``[steps, n_layers, d]`` (step 0 = last prompt token, step k = reply token k)
        and the extra hook points, ``name -> [steps, ...]``."""
        if not recorder.record:
            return [(None, {})] * len(requests)
        states = recorder.stacked().float().cpu()
        hooks = {name: value.float().cpu() for name, value in recorder.hook_steps().items()}
        return [(states[row], {name: value[row] for name, value in hooks.items()}) for row in range(len(requests))]

    @torch.inference_mode()
    def generate(self, requests, sampling: Sampling, interventions: Sequence[Intervention] = ()) -> list[CaptureResult]:
        if not requests:
            return []
        if self.retire_finished_rows and not interventions:
            return generate_retiring(self, requests, sampling)
        ids, mask = self._batch(requests)
        width = ids.shape[1]
        record = any(r.capture for r in requests)
        max_new = max(r.max_new_tokens for r in requests)
        kwargs: dict[str, Any] = {
            "attention_mask": mask,
            "max_new_tokens": max_new + 1,  # the extra token lets the last reply token be fed once
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids) or None,
        }
        if not sampling.greedy:
            kwargs["logits_processor"] = [
                SeededSampler([r.seed for r in requests], sampling.temperature, sampling.top_p, self.device)
            ]
        stopper = None
        if any(r.stop for r in requests):
            stopper = DelayedStopStrings(self.tokenizer, [r.stop for r in requests], width)
            kwargs["stopping_criteria"] = [stopper]
        recorder = self._make_recorder(record, interventions)
        try:
            sequences = self.hf.generate(input_ids=ids, **kwargs)
        finally:
            recorder.remove()
        generated = sequences[:, width:].cpu()
        cuts = [self._cut(row, request, generated[row], stopper) for row, request in enumerate(requests)]
        per_row = self._collect_states(recorder, requests, cuts)
        return [
            self._result(request, reply, stopped_by, *per_row[row])
            for row, (request, (reply, stopped_by)) in enumerate(zip(requests, cuts, strict=True))
        ]

    def _cut(self, row, request, generated, stopper) -> tuple[tuple[int, ...], str]:
        """The reply's tokens (before EOS, a stop string or the token limit) and why it ended."""
        tokens = generated.tolist()
        cut = next((i for i, t in enumerate(tokens) if t in self.eos_ids or t == self.pad_id), len(tokens))
        stopped_by = "eos" if cut < len(tokens) else "max_tokens"
        hit = stopper.hit_at[row] if stopper is not None else -1
        if 0 <= hit <= cut and hit <= request.max_new_tokens:
            cut, stopped_by = hit, "stop_string"
        if cut > request.max_new_tokens:
            cut, stopped_by = request.max_new_tokens, "max_tokens"
        return tuple(tokens[:cut]), stopped_by

    def _result(self, request, reply, stopped_by, states, hooks) -> CaptureResult:
        text = self.tokenizer.decode(list(reply), skip_special_tokens=True)
        text, _ = trim_at_stop(text, request.stop)
        result = CaptureResult(tuple(request.prompt_ids), reply, text.strip(), stopped_by)
        if request.capture and states is not None:
            result.activations, result.reply_all = self._positions(states, len(reply))
            if hooks:
                result.hooks = {name: self._positions(value, len(reply), keep_all=False)[0]
                                for name, value in hooks.items()}
        return result

    def _positions(self, states: torch.Tensor, n_reply: int, keep_all: bool = True):
        """states: ``[steps, ...]``; step 0 = last prompt token, step k = reply token k."""
        store_all = keep_all and self.spec.store_all
        last_prompt = states[0]
        if n_reply == 0:  # the model ended its turn at once: the turn's last state is the prompt's
            acts = {Position.LAST_PROMPT: last_prompt, Position.REPLY_MEAN: last_prompt, Position.REPLY_LAST: last_prompt}
            return self._keep(acts), (states[0:0].clone() if store_all else None)
        reply = states[1 : n_reply + 1]
        acts = {Position.LAST_PROMPT: last_prompt, Position.REPLY_MEAN: reply.mean(dim=0), Position.REPLY_LAST: reply[-1]}
        return self._keep(acts), (reply.clone() if store_all else None)

    def _keep(self, acts: dict[Position, torch.Tensor]) -> dict[Position, torch.Tensor]:
        return {p: v.clone() for p, v in acts.items() if p in self.spec.positions}

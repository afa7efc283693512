"""The ``hf`` capture backend: decoder-block outputs recorded during generation, by the model surface.

`deception_core.model.surface.Model.generate` decodes and records (PyTorch forward hooks on the
decoder blocks: the first forward call gives the last prompt token, call ``k + 1`` the residual
stream of reply token ``k`` as it is fed back in; nothing is run twice). This adapter turns the
recorded steps into the positions a dataset stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import torch

from deception_core.base.errors import UsageError
from deception_core.base.types import Position
from deception_core.contracts.capture import (
    CaptureBackend,
    CaptureResult,
    CaptureSpec,
    GenerationRequest,
    Intervention,
    Sampling,
)
from deception_core.model.generation import Generated, LayerRecorder, StepRecorder
from deception_core.model.surface import Model

#: a row's recorded states and extra hook points (None: not captured)
RowStates = tuple[torch.Tensor | None, dict[str, torch.Tensor]]


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

    def __init__(self, model: Model, spec: CaptureSpec, settings: HFSettings | None = None) -> None:
        super().__init__(model, spec)
        self.model: Model = model
        self.settings = settings or HFSettings()
        if spec.hook_names and not self.supports_hook_names:
            raise UsageError(
                f"the {self.name!r} capture backend records decoder-layer outputs only; hook points "
                f"{list(spec.hook_names)} need --capture-backend transformer-lens or hybrid"
            )
        self.tokenizer = model.tokenizer
        #: drop finished rows from the batch while decoding (`deception_core.model.retiring`); exact
        #: subclasses of this backend only, since others record through their own recorders
        self.retire_finished_rows = self.settings.retire_finished_rows and type(self) is HFCaptureBackend

    def _make_recorder(self, record: bool, interventions: Sequence[Intervention]) -> StepRecorder:
        """The object that applies interventions and records states during ``generate``."""
        return LayerRecorder(self.model.layers_module, self.spec.layers, record, interventions)

    def _custom_recorder(self) -> bool:
        """Whether a subclass records through its own recorder (else the surface builds the layer
        recorder itself, and may use its faster retiring loop)."""
        return type(self)._make_recorder is not HFCaptureBackend._make_recorder

    def _collect_states(self, requests: Sequence[GenerationRequest], generated: Sequence[Generated],
                        interventions: Sequence[Intervention]) -> list[RowStates]:
        """Per row: ``[steps, n_layers, d]`` (step 0 = last prompt token, step k = reply token k)
        and the extra hook points, ``name -> [steps, ...]``."""
        return [(g.states, g.hooks) for g in generated]

    def generate(self, requests: Sequence[GenerationRequest], sampling: Sampling,
                 interventions: Sequence[Intervention] = ()) -> list[CaptureResult]:
        if not requests:
            return []
        generated = self.model.generate(requests, sampling, layers=self.spec.layers, interventions=interventions,
                                        retire=self.retire_finished_rows,
                                        recorder=self._make_recorder if self._custom_recorder() else None)
        per_row = self._collect_states(requests, generated, interventions)
        return [self._result(request, g, *per_row[row]) for row, (request, g) in enumerate(zip(requests, generated,
                                                                                             strict=True))]

    def _result(self, request: GenerationRequest, generated: Generated, states: torch.Tensor | None,
                hooks: dict[str, torch.Tensor]) -> CaptureResult:
        reply = generated.reply_ids
        result = CaptureResult(tuple(request.prompt_ids), reply, generated.text, generated.stopped_by)
        if request.capture and states is not None:
            result.activations, result.reply_all = self._positions(states, len(reply))
            if hooks:
                result.hooks = {name: self._positions(value, len(reply), keep_all=False)[0]
                                for name, value in hooks.items()}
        return result

    def _positions(self, states: torch.Tensor, n_reply: int,
                   keep_all: bool = True) -> tuple[dict[Position, torch.Tensor], torch.Tensor | None]:
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

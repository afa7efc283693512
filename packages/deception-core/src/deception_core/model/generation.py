"""Generation with capture: batched decoding of token-id prompts, recording the residual stream.

Every forward call of a recorded decoder block during generation keeps the block output at the
last sequence position: the first call (the prompt pass) gives the last prompt token, call
``k + 1`` the residual stream of reply token ``k`` as it is fed back in. Nothing is run twice; the
hooks only slice tensors that the generation computes anyway.

Two loops give the same tokens and states: HF ``generate`` (every row stays in the batch until the
last one ends; used with interventions or a custom recorder) and the retiring loop of
`deception_core.model.retiring` (a finished row leaves the batch and the key/value cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs
import torch

from deception_core.model.decoding import DelayedStopStrings, SeededSampler, trim_at_stop
from deception_core.model.hooks import DecoderLayerHooks
from deception_core.model.intervention import Intervention
from deception_core.model.padding import pad_batch
from deception_core.model.requests import GenerationRequest, Sampling

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@attrs.frozen
class Generated:
    """One reply: its tokens (cut before EOS, a stop string or the token limit), why it ended, its text,
    and when recorded ``states`` ``[steps, n_layers, d]`` float32 on the CPU (step 0 = the last prompt
    token, step ``k`` = reply token ``k``) and extra hook points ``name -> [steps, ...]``."""

    prompt_ids: tuple[int, ...]
    reply_ids: tuple[int, ...]
    text: str
    stopped_by: str  # "eos" | "stop_string" | "max_tokens"
    states: torch.Tensor | None = None
    hooks: dict[str, torch.Tensor] = attrs.field(factory=dict)


class StepRecorder(Protocol):
    """Applies interventions and records the last position of each forward call during generation."""

    record: bool

    def stacked(self) -> torch.Tensor:
        """``[batch, steps, n_layers, d_model]`` of everything recorded."""

    def hook_steps(self) -> dict[str, torch.Tensor]:
        """Extra hook points, ``name -> [batch, steps, ...]``."""

    def remove(self) -> None:
        """Take the hooks off the model."""


#: builds the recorder of one ``generate`` call from (record?, interventions)
RecorderFactory = Callable[[bool, Sequence[Intervention]], StepRecorder]


class LayerRecorder:
    """Apply interventions and record the last position of each watched decoder block per forward call."""

    def __init__(self, layers_module: torch.nn.ModuleList, layers: Sequence[int], record: bool,
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


@attrs.frozen
class StopTokens:
    """The token ids that end a reply, and the id padding uses."""

    eos_ids: frozenset[int]
    pad_id: int

    @classmethod
    def of(cls, hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> StopTokens:
        eos = hf_model.generation_config.eos_token_id if hf_model.generation_config is not None else None
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(int(tokenizer.eos_token_id))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
        return cls(frozenset(int(e) for e in eos_ids), int(pad))


def cut_reply(stop: StopTokens, request: GenerationRequest, tokens: Sequence[int], hit: int) -> tuple[tuple[int, ...], str]:
    """The reply's tokens (before EOS, a stop string seen at generated length ``hit``, or the token
    limit) and why it ended."""
    tokens = list(tokens)
    cut = next((i for i, t in enumerate(tokens) if t in stop.eos_ids or t == stop.pad_id), len(tokens))
    stopped_by = "eos" if cut < len(tokens) else "max_tokens"
    if 0 <= hit <= cut and hit <= request.max_new_tokens:
        cut, stopped_by = hit, "stop_string"
    if cut > request.max_new_tokens:
        cut, stopped_by = request.max_new_tokens, "max_tokens"
    return tuple(tokens[:cut]), stopped_by


def reply_text(tokenizer: PreTrainedTokenizerBase, reply: Sequence[int], stops: Sequence[str]) -> str:
    text = tokenizer.decode(list(reply), skip_special_tokens=True)
    text, _ = trim_at_stop(str(text), stops)
    return text.strip()


def generate_plain(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop: StopTokens,
                   requests: Sequence[GenerationRequest], sampling: Sampling, recorder: StepRecorder,
                   device: torch.device) -> list[Generated]:
    """HF ``generate`` over the left-padded batch, the recorder's hooks on; every row to the end."""
    ids, mask = pad_batch([r.prompt_ids for r in requests], stop.pad_id, side="left")
    ids, mask = ids.to(device), mask.to(device)
    width = ids.shape[1]
    max_new = max(r.max_new_tokens for r in requests)
    kwargs: dict[str, object] = {
        "attention_mask": mask,
        "max_new_tokens": max_new + 1,  # the extra token lets the last reply token be fed once
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "pad_token_id": stop.pad_id,
        "eos_token_id": sorted(stop.eos_ids) or None,
    }
    if not sampling.greedy:
        kwargs["logits_processor"] = [
            SeededSampler([r.seed for r in requests], sampling.temperature, sampling.top_p, device)
        ]
    stopper = None
    if any(r.stop for r in requests):
        stopper = DelayedStopStrings(tokenizer, [r.stop for r in requests], width)
        kwargs["stopping_criteria"] = [stopper]
    try:
        sequences = hf_model.generate(input_ids=ids, **kwargs)  # type: ignore[operator]  # transformers types generate loosely
    finally:
        recorder.remove()
    assert isinstance(sequences, torch.Tensor)
    generated = sequences[:, width:].cpu()
    states = recorder.stacked().float().cpu() if recorder.record else None
    hooks = {name: value.float().cpu() for name, value in recorder.hook_steps().items()} if recorder.record else {}
    out = []
    for row, request in enumerate(requests):
        hit = stopper.hit_at[row] if stopper is not None else -1
        reply, stopped_by = cut_reply(stop, request, generated[row].tolist(), hit)
        out.append(Generated(tuple(request.prompt_ids), reply, reply_text(tokenizer, reply, request.stop), stopped_by,
                             None if states is None else states[row],
                             {name: value[row] for name, value in hooks.items()}))
    return out

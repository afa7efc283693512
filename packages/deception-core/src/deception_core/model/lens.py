"""TransformerLens plumbing of the model surface (the ``transformer-lens`` and ``hybrid`` capture backends).

Both wrap an HF model in a `transformer_lens.model_bridge.TransformerBridge`, which needs no hub
access when it is given the model object and a tokenizer, supports every architecture TL knows,
and keeps HF numerics (no folded layer norms, no centred weights). The bridge installs its
components inside the HF module tree, so the HF ``generate`` loop itself fires the TL hook points
(``blocks.{L}.hook_resid_post`` and the rest).
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from deception_core.base.errors import UsageError
from deception_core.model.intervention import Intervention
from deception_core.model.padding import mask_positions, pad_batch

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import PreTrainedTokenizerBase

#: hook points whose activation is not ``[batch, position, ...]`` (the query axis is not axis 1)
UNSUPPORTED_HOOK_SUFFIXES = ("hook_pattern", "hook_attn_scores")

_levels = itertools.count(10_000)  # a private hook "level" per recorder, so removal is exact


def resid_post(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def boot_bridge(hf_model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, model_id: str) -> TransformerBridge:
    """Wrap ``hf_model`` (in place) in a TransformerBridge, offline."""
    from transformer_lens.model_bridge import TransformerBridge

    config: Any = hf_model.config
    if not getattr(config, "architectures", None):  # models built with from_config carry none
        config.architectures = [type(hf_model).__name__]
    # TL re-loads the tokenizer from the hub unless it already adds BOS; our backends feed token
    # ids, so a copy marked that way is enough and nothing is downloaded.
    bridge_tokenizer = copy.copy(tokenizer)
    bridge_tokenizer.init_kwargs = dict(tokenizer.init_kwargs, add_bos_token=True,
                                        name_or_path=getattr(tokenizer, "name_or_path", model_id) or model_id)
    parameter = next(hf_model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return TransformerBridge.boot_transformers(
                model_id, hf_model=hf_model, tokenizer=bridge_tokenizer, device=str(parameter.device),
                dtype=parameter.dtype,
            )
        except (ValueError, NotImplementedError) as error:
            raise UsageError(
                f"TransformerLens cannot wrap {model_id} ({type(hf_model).__name__}): "
                f"{str(error).splitlines()[0][:300]}. Use --capture-backend hf for this model"
            ) from None


def parameter_snapshot(model: torch.nn.Module) -> dict[str, set[str]]:
    """Which parameter slots each submodule has (to undo what the bridge adds)."""
    return {name: {k for k, v in module._parameters.items() if v is not None} for name, module in model.named_modules()}


def unwrap_bridge(model: torch.nn.Module, snapshot: dict[str, set[str]]) -> None:
    """Put the HF modules the bridge wrapped back in place and drop parameters it added
    (such as a zero ``lm_head.bias``), so the model computes and hooks exactly as before."""
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    def restore(module: torch.nn.Module) -> None:
        for name, child in list(module._modules.items()):
            while isinstance(child, GeneralizedComponent):
                child = child.original_component
                module._modules[name] = child
            if child is not None:
                restore(child)

    restore(model)
    for name, module in model.named_modules():
        present = {k for k, v in module._parameters.items() if v is not None}
        for extra in present - snapshot.get(name, present):
            module._parameters[extra] = None  # e.g. Linear(bias=False) keeps a None bias slot


def check_hook_names(bridge: TransformerBridge, names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in bridge.hook_dict]
    if unknown:
        some = ", ".join(sorted(n for n in bridge.hook_dict if n.startswith("blocks.0."))[:12])
        raise UsageError(f"unknown TransformerLens hook point(s) {unknown}; block 0 has for example: {some}")
    odd = [name for name in names if name.endswith(UNSUPPORTED_HOOK_SUFFIXES)]
    if odd:
        raise UsageError(
            f"hook point(s) {odd} are [batch, head, query, key] and cannot be read per token; "
            "choose a [batch, position, ...] hook such as blocks.L.attn.hook_z or blocks.L.hook_mlp_out"
        )


class HookPointRecorder:
    """TL hook functions that apply interventions and record the last position per call.

    Same contract as the HF layer recorder: call 0 of a hook point is the prompt pass, call
    ``k + 1`` feeds reply token ``k``.
    """

    def __init__(self, bridge: Any, layers: Sequence[int], hook_names: Sequence[str], record: bool,
                 interventions: Sequence[Intervention]) -> None:
        self.bridge = bridge
        self.layers = tuple(layers)
        self.hook_names = tuple(hook_names)
        self.record = record
        self.level = next(_levels)
        self.steps: dict[str, list[torch.Tensor]] = {}
        self.calls: dict[str, int] = {}
        by_name: dict[str, list[Intervention]] = {}
        for item in interventions:
            by_name.setdefault(resid_post(item.layer), []).append(item)
        recorded = {resid_post(layer) for layer in self.layers} | set(self.hook_names) if record else set()
        self.points = []
        for name in sorted(recorded | set(by_name)):
            point = bridge.hook_dict[name]
            self.steps[name] = []
            point.add_hook(self._hook(name, by_name.get(name, []), name in recorded), level=self.level)
            self.points.append(point)

    def _hook(self, name: str, interventions: list[Intervention], keep: bool) -> Callable[..., torch.Tensor | None]:
        def hook(activation: torch.Tensor, hook: object) -> torch.Tensor | None:
            step = self.calls.get(name, 0)
            self.calls[name] = step + 1
            for item in interventions:
                activation = item.fn(activation, step)
            if keep:
                self.steps[name].append(activation[:, -1].detach())
            return activation if interventions else None

        return hook

    def stacked(self) -> torch.Tensor:
        per_layer = [torch.stack(self.steps[resid_post(layer)], dim=1) for layer in self.layers]
        return torch.stack(per_layer, dim=2)

    def hook_steps(self) -> dict[str, torch.Tensor]:
        return {name: torch.stack(self.steps[name], dim=1) for name in self.hook_names}

    def remove(self) -> None:
        for point in self.points:
            point.remove_hooks("fwd", level=self.level)


class _StopForward(Exception):
    """Raised by the hook on the deepest needed hook point to end the forward early."""


class FullSequenceRecorder(HookPointRecorder):
    """Keeps every position of each hooked activation (one forward, no decoding steps)."""

    def _hook(self, name: str, interventions: list[Intervention], keep: bool) -> Callable[..., torch.Tensor | None]:
        def hook(activation: torch.Tensor, hook: object) -> torch.Tensor | None:
            for item in interventions:
                activation = item.fn(activation, 0)
            if keep:
                self.steps[name].append(activation.detach())
            return activation if interventions else None

        return hook


def full_sequence_states(tl_model: torch.nn.Module, bridge: Any, sequences: Sequence[Sequence[int]], starts: Sequence[int],
                         layers: Sequence[int], hook_names: Sequence[str], interventions: Sequence[Intervention],
                         pad_id: int, device: torch.device) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """ONE left-padded forward pass of the bridged ``tl_model`` over ``sequences``: per row, the
    residual stream after ``layers`` ``[seq - start, n_layers, d]`` and the ``hook_names`` activations
    from position ``starts[row]`` on (float32, CPU). Interventions act on the whole sequence
    (``step == 0``); the pass stops after the deepest hook point needed."""
    ids, mask = pad_batch(sequences, pad_id, side="left")
    width = ids.shape[1]
    positions = mask_positions(mask)
    forward = FullSequenceRecorder(bridge, layers, hook_names, True, interventions)
    needed = list(forward.steps)

    def stop_when_done(activation: torch.Tensor, hook: object) -> None:
        if all(forward.steps[name] for name in needed):
            raise _StopForward  # everything recorded: skip the later layers and the unembedding

    for point in forward.points:
        point.add_hook(stop_when_done, level=forward.level)
    try:
        with torch.inference_mode():
            tl_model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                     use_cache=False)
    except _StopForward:
        pass
    finally:
        forward.remove()
    out = []
    for j, tokens in enumerate(sequences):
        first = width - len(tokens) + starts[j]
        states = torch.stack([forward.steps[resid_post(layer)][0][j, first:] for layer in layers], dim=1)
        hooks = {name: forward.steps[name][0][j, first:].float().cpu() for name in hook_names}
        out.append((states.float().cpu(), hooks))
    return out

"""The one hook mechanism on a Hugging Face model's decoder blocks, shared by capture and the causal
interventions: apply interventions to a block's output (in order, with the number of the forward
call, 0 being the prompt pass) and report the edited output of the watched layers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Union

from deception_core.model.intervention import Intervention

if TYPE_CHECKING:
    import torch

#: called with (layer, edited block output) for every forward call of a watched layer
OnOutput = Callable[[int, "torch.Tensor"], None]
#: what a decoder block returns: its hidden states, alone or first in a tuple of other outputs
BlockOutput = Union["torch.Tensor", tuple["torch.Tensor", ...]]
#: a forward hook on a decoder block: (block, its inputs, its output) -> a replacement output or None
BlockHook = Callable[["torch.nn.Module", tuple[object, ...], BlockOutput], BlockOutput | None]


def decoder_layers(hf_model: torch.nn.Module) -> torch.nn.ModuleList:
    """The ModuleList of decoder blocks of a causal LM (Llama/Gemma/GPT-2/NeoX shapes)."""
    import torch  # here, not at the top: the command line imports this module and must not load torch

    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        module: object = hf_model
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, torch.nn.ModuleList):
            return module
    raise TypeError(f"cannot find the decoder layers of {type(hf_model).__name__}")


def block_output(output: BlockOutput) -> torch.Tensor:
    """A decoder block's hidden states (blocks return a tensor or a tuple starting with it)."""
    import torch

    return output if torch.is_tensor(output) else output[0]


def replace_block_output(output: BlockOutput, hidden: torch.Tensor) -> BlockOutput:
    """``output`` with its hidden states replaced (a block's other outputs kept)."""
    import torch

    return hidden if torch.is_tensor(output) else (hidden, *output[1:])


class DecoderLayerHooks:
    """Forward hooks on ``layers_module[layer]`` for every intervened or watched layer; `remove` them after."""

    def __init__(self, layers_module: torch.nn.ModuleList, interventions: Sequence[Intervention], watch: Iterable[int] = (),
                 on_output: OnOutput | None = None) -> None:
        self.watch = frozenset(watch)
        self.on_output = on_output
        self.calls: dict[int, int] = {}
        by_layer: dict[int, list[Intervention]] = {}
        for item in interventions:
            by_layer.setdefault(item.layer, []).append(item)
        self.handles = [layers_module[layer].register_forward_hook(self._hook(layer, by_layer.get(layer, [])))
                        for layer in sorted(self.watch | set(by_layer))]

    def _hook(self, layer: int, interventions: list[Intervention]) -> BlockHook:
        def hook(_module: torch.nn.Module, _inputs: tuple[object, ...], output: BlockOutput) -> BlockOutput | None:
            step = self.calls.get(layer, 0)
            self.calls[layer] = step + 1
            hidden = block_output(output)
            for item in interventions:
                hidden = item.fn(hidden, step)
            if self.on_output is not None and layer in self.watch:
                self.on_output(layer, hidden)
            return replace_block_output(output, hidden) if interventions else None

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

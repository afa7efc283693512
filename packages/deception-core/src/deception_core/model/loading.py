"""Read a model's tokenizer and weights (the only `from_pretrained` of a model); `surface.load_model` calls it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deception_core.base.errors import UsageError
from deception_core.model.device import torch_dtype
from deception_core.model.embedded import converted_dir, ensure_converted
from deception_core.model.hooks import decoder_layers
from deception_core.model.placement import cuda_free_bytes, plan_device_map
from deception_core.model.spec import ModelSpec
from deception_core.ui.progress import on_terminal

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["Weights", "decoder_layers", "load_tokenizer", "local_tokenizer", "read_weights"]

log = logging.getLogger("deception.models")


@attrs.frozen
class Weights:
    """What `read_weights` reads: the HF model and its tokenizer, with where they came from."""

    hf_model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    local_dir: Path | None  # a directory holding weights + tokenizer, when there is one
    tl_name: str | None


def _location(spec: ModelSpec) -> tuple[str, Path | None, str | None]:
    """Where ``from_pretrained`` reads ``spec`` (the embedded models converted once), its local folder, TL name."""
    if spec.source == "embedded":
        assert spec.embedded is not None
        location = str(ensure_converted(spec.embedded))
        return location, Path(location), spec.embedded.tl_name
    if spec.source == "local":
        return str(spec.path), spec.path, None
    return spec.raw, None, None


def load_tokenizer(spec: ModelSpec, revision: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer of ``spec`` alone (no weights): inputs are measured against the context before a model loads."""
    from transformers import AutoTokenizer

    location, _, _ = _location(spec)
    kwargs: dict[str, str] = {"revision": revision} if spec.source == "hub" and revision else {}
    return AutoTokenizer.from_pretrained(location, **kwargs)


def local_tokenizer(spec: ModelSpec, revision: str | None = None) -> PreTrainedTokenizerBase | None:
    """``spec``'s tokenizer when it is on this machine already (nothing downloaded or converted), else None."""
    from transformers import AutoTokenizer

    if spec.source == "embedded":
        assert spec.embedded is not None  # parse sets it for every embedded source
        location = converted_dir(spec.embedded)
        if not (location / "tokenizer_config.json").is_file():
            return None  # not converted on this machine; converting is too costly for a report
        return AutoTokenizer.from_pretrained(str(location))
    if spec.source == "local":
        return AutoTokenizer.from_pretrained(str(spec.path))
    return AutoTokenizer.from_pretrained(spec.raw, revision=revision, local_files_only=True)


def read_weights(spec: ModelSpec, *, device: str, dtype: str, revision: str | None = None,
                 device_map: dict[str, Any] | None = None, random_weights: bool = False) -> Weights:
    """Read ``spec``'s tokenizer and weights onto ``device`` (resolved) in ``dtype`` (resolved): the only
    place model weights are loaded. Call it through `deception_core.model.surface.load_model`.

    On CUDA with several GPUs, a model that does not fit on the first is split over all of them
    (`placement.plan_device_map`); ``device_map`` gives such a placement explicitly."""
    if random_weights:
        return _random_weights(spec, device, dtype)
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # the libraries' own bars (downloads, GGUF conversion, weight loading, with ETA) follow ours:
    # on a terminal only
    if on_terminal():
        hf_logging.enable_progress_bar()
        enable_progress_bars()
    else:
        hf_logging.disable_progress_bar()
        disable_progress_bars()
    location, local_dir, tl_name = _location(spec)
    log.info("loading %s (%s) on %s as %s", spec.raw, spec.source, device, dtype)
    kwargs: dict[str, str] = {"revision": revision} if spec.source == "hub" and revision else {}
    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    device_map = device_map if device_map is not None else _multi_gpu_plan(location, device, dtype, kwargs)
    if device_map is not None:
        log.info("placing %s over %d devices: %s", spec.raw, len(set(device_map.values())), _summary(device_map))
        hf_model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype(dtype), device_map=device_map,
                                                        **kwargs)
    else:
        hf_model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype(dtype), **kwargs)
        hf_model.to(device)  # type: ignore[arg-type]  # transformers' decorator types `to` wrongly
        if device == "cpu":
            from deception_core.model.cpu_head import use_column_major_head  # heavy: subclasses a torch module

            use_column_major_head(hf_model)
    return Weights(hf_model, tokenizer, local_dir, tl_name)


def _random_weights(spec: ModelSpec, device: str, dtype: str) -> Weights:
    """The model of ``spec``'s folder (its config.json) with random weights, seed 0, and its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if spec.path is None:
        raise UsageError("--random-weights needs --model DIR holding config.json and a tokenizer")
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(spec.path))
    with torch.device(device):  # initialise on the target device: a 2B model inits slowly on CPU
        hf_model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(spec.path))
    return Weights(hf_model, tokenizer, spec.path, None)


def _multi_gpu_plan(location: str, device: str, dtype: str, kwargs: dict[str, str]) -> dict[str, int] | None:
    if device != "cuda":
        return None
    import torch

    if torch.cuda.device_count() < 2:
        return None
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(location, **kwargs)
    return plan_device_map(config, torch_dtype(dtype), cuda_free_bytes())


def _summary(device_map: Mapping[str, object]) -> str:
    counts: dict[str, int] = {}
    for device in device_map.values():
        counts[str(device)] = counts.get(str(device), 0) + 1
    return ", ".join(f"{n} module(s) on {device}" for device, n in counts.items())

"""Load a model for a run: one copy, on the chosen device and dtype."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from deception_core.model.device import torch_dtype
from deception_core.model.embedded import ensure_converted
from deception_core.model.fingerprint import model_fingerprint
from deception_core.model.placement import cuda_free_bytes, plan_device_map
from deception_core.model.spec import ModelSpec
from deception_core.ui.progress import on_terminal

log = logging.getLogger("deception.models")


@attrs.define
class LoadedModel:
    """An HF causal LM with its tokenizer and the facts a dataset records about it."""

    hf_model: Any
    tokenizer: Any
    model_id: str
    source: str
    revision: str | None
    dtype: str
    device: str
    n_layers: int
    d_model: int
    model_type: str
    local_dir: Path | None  # a directory holding weights + tokenizer, when there is one
    tl_name: str | None = None
    _fingerprint: dict[str, Any] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "source": self.source,
            "revision": self.revision,
            "dtype": self.dtype,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "model_type": self.model_type,
            "chat_template": self.has_chat_template,
            "fingerprint": self.fingerprint,
        }

    @property
    def fingerprint(self) -> dict[str, Any]:
        """Depth, width and hashes of the config and the weights' metadata (`deception_core.model.fingerprint`)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.hf_model)
        return self._fingerprint


def decoder_layers(hf_model: Any) -> Any:
    """The ModuleList of decoder blocks of a causal LM (Llama/Gemma/GPT-2/NeoX shapes)."""
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        module = hf_model
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if module is not None:
            return module
    raise TypeError(f"cannot find the decoder layers of {type(hf_model).__name__}")


def from_hf(hf_model: Any, tokenizer: Any, *, model_id: str, source: str, revision: str | None = None,
            local_dir: Path | None = None, tl_name: str | None = None) -> LoadedModel:
    """Wrap an already-built HF model (tests, research code)."""
    config = hf_model.config
    text = getattr(config, "text_config", None) or config
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    import torch

    names = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}
    parameter = next(hf_model.parameters())
    return LoadedModel(
        hf_model=hf_model.eval(),
        tokenizer=tokenizer,
        model_id=model_id,
        source=source,
        revision=revision,
        dtype=names.get(parameter.dtype, str(parameter.dtype)),
        device=str(parameter.device.type),
        n_layers=len(decoder_layers(hf_model)),
        d_model=int(getattr(text, "hidden_size", getattr(text, "n_embd", 0))),
        model_type=str(getattr(text, "model_type", config.model_type)),
        local_dir=local_dir,
        tl_name=tl_name,
    )


def _location(spec: ModelSpec) -> tuple[str, Path | None, str | None]:
    """Where ``from_pretrained`` reads ``spec`` (the embedded models converted once), its local folder, TL name."""
    if spec.source == "embedded":
        assert spec.embedded is not None
        location = str(ensure_converted(spec.embedded))
        return location, Path(location), spec.embedded.tl_name
    if spec.source == "local":
        return str(spec.path), spec.path, None
    return spec.raw, None, None


def load_tokenizer(spec: ModelSpec, revision: str | None = None) -> Any:
    """The tokenizer of ``spec`` alone (no weights): inputs are measured against the context before a model loads."""
    from transformers import AutoTokenizer

    location, _, _ = _location(spec)
    kwargs: dict[str, Any] = {"revision": revision} if spec.source == "hub" and revision else {}
    return AutoTokenizer.from_pretrained(location, **kwargs)


def load_model(spec: ModelSpec, *, device: str, dtype: str, revision: str | None = None,
               device_map: dict[str, Any] | None = None) -> LoadedModel:
    """Load ``spec`` (already validated) onto ``device`` in ``dtype``.

    On CUDA with several GPUs, a model that does not fit on the first is split over all of them
    (`placement.plan_device_map`); ``device_map`` gives such a placement explicitly."""
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
    kwargs: dict[str, Any] = {"revision": revision} if spec.source == "hub" and revision else {}
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
    return from_hf(hf_model, tokenizer, model_id=spec.raw, source=spec.source, revision=revision,
                   local_dir=local_dir, tl_name=tl_name)


def _multi_gpu_plan(location: str, device: str, dtype: str, kwargs: dict[str, Any]) -> dict[str, int] | None:
    if device != "cuda":
        return None
    import torch

    if torch.cuda.device_count() < 2:
        return None
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(location, **kwargs)
    return plan_device_map(config, torch_dtype(dtype), cuda_free_bytes())


def _summary(device_map: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for device in device_map.values():
        counts[str(device)] = counts.get(str(device), 0) + 1
    return ", ".join(f"{n} module(s) on {device}" for device, n in counts.items())

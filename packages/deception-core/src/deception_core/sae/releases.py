"""Which SAEs exist for which model: sae-lens's own pretrained directory, read offline.

sae-lens ships its directory of pretrained SAEs as ``pretrained_saes.yaml`` inside the package
(release -> model, and per SAE id: hub path, expected L0, Neuronpedia id). Its reader,
``sae_lens.loading.pretrained_saes_directory.get_pretrained_saes_directory``, sits behind
``import sae_lens``, which imports torch and TransformerLens (about ten seconds); so this module
reads the same installed file with the same YAML loader and the same keys, without importing the
package. A test checks that both readings agree.

Each SAE id becomes one `DirectorySae`, with the layer and hook point read from its id or hub path
(``blocks.12.hook_resid_post``, ``layer_12/width_16k/canonical``, ``resid_post/layer_12_...``) and
its width (number of features) where the id or path states it. Plugins add SAEs of their own
through the ``register_sae_releases`` hook: ``registry.add(name, factory)`` where ``factory()``
returns a `DirectorySae` or a list of them.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import Any

import attrs

from deception_core.base.errors import UsageError
from deception_core.base.types import JSONObject

#: the hook point the toolkit captures (and so the only one an SAE can be applied to)
RESID_POST = "resid_post"

_BLOCK_HOOK = re.compile(r"blocks\.(\d+)\.hook_(resid_post|resid_pre|resid_mid|mlp_out|attn_out|z)\b")
_LAYER = re.compile(r"(?:^|[/_])layer_(\d+)(?:[/_]|$)")
_LLAMA_SCOPE = re.compile(r"^l(\d+)([rma])_")  # Llama Scope: l12r_8x = residual stream after block 12
_PATH_HOOK = re.compile(r"(?:^|/)(resid_post|resid_pre|mlp_out|attn_out|transcoder|clt)(?:/|_)")
_WIDTH = re.compile(r"width_(\d+[km]?)(?:[/_]|$)")
_PATH_WIDTH = re.compile(r"_(\d{4,7})(?:_|$)")
_LLAMA_HOOKS = {"r": RESID_POST, "m": "mlp_out", "a": "attn_out"}
_SUFFIXES = ("-it", "-pt", "-instruct", "-base", "-chat", "-hf")
_ALIASES = {"gpt2-small": "gpt2"}


@attrs.frozen
class DirectorySae:
    """One SAE of the directory: where it reads (layer, hook), how wide it is, where to browse it."""

    release: str
    sae_id: str
    model: str  # the model name sae-lens gives (a TransformerLens or Hugging Face name)
    layer: int
    hook: str  # resid_post, resid_pre, mlp_out, attn_out, ... ("unknown" when neither id nor path says)
    width: str | None = None  # number of features as the release states it ("16k", "16384"), if it does
    l0: float | None = None  # expected L0 (mean active features) from the directory, if given
    neuronpedia_id: str | None = None  # "gemma-2b-it/12-res-jb": the dashboard is neuronpedia.org/<id>

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.hook_{self.hook}"

    def describe(self) -> JSONObject:
        return attrs.asdict(self)


def sae_lens_yaml() -> Path:
    """The installed ``pretrained_saes.yaml`` of sae-lens, found without importing sae-lens."""
    spec = importlib.util.find_spec("sae_lens")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("sae-lens is not installed; install it with pip install 'deception-core[sae]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained_saes.yaml"
    if not path.is_file():
        raise UsageError(f"the installed sae-lens has no pretrained directory at {path}; reinstall sae-lens")
    return path


def parse_entry(release: str, model: str, entry: dict[str, Any]) -> DirectorySae | None:
    """One SAE of the YAML as a `DirectorySae`; None when neither its id nor its path gives a layer."""
    sae_id, path = str(entry["id"]), str(entry.get("path", ""))
    layer, hook = None, None
    for text in (sae_id, path):
        match = _BLOCK_HOOK.search(text)
        if match:
            layer, hook = int(match.group(1)), match.group(2)
            break
    if layer is None:
        llama = _LLAMA_SCOPE.match(sae_id)
        if llama:
            layer, hook = int(llama.group(1)), _LLAMA_HOOKS[llama.group(2)]
    if layer is None:
        match = _LAYER.search(sae_id) or _LAYER.search(path)
        if match is None:
            return None
        layer = int(match.group(1))
        in_path = _PATH_HOOK.search(path)
        if in_path:
            hook = in_path.group(1)
        elif any(word in release for word in ("transcoder", "clt", "crosscoder")):
            hook = "transcoder"
        elif re.search(r"-res(?:-|$)", release):
            hook = RESID_POST
        elif re.search(r"-mlp(?:-|$)", release):
            hook = "mlp_out"
        elif re.search(r"-att(?:n)?(?:-|$)", release):
            hook = "attn_out"
        else:
            hook = "unknown"
    width_match = _WIDTH.search(sae_id) or _WIDTH.search(path) or _PATH_WIDTH.search(path)
    l0 = entry.get("l0")
    return DirectorySae(
        release=release, sae_id=sae_id, model=str(model), layer=layer, hook=str(hook),
        width=width_match.group(1) if width_match else None,
        l0=float(l0) if l0 is not None else None,
        neuronpedia_id=entry.get("neuronpedia") or None,
    )


def parse_directory(data: dict[str, Any]) -> list[DirectorySae]:
    """Every SAE of a parsed ``pretrained_saes.yaml`` that names a layer."""
    out = []
    for release, value in data.items():
        for entry in value.get("saes", []):
            parsed = parse_entry(str(release), value.get("model", ""), entry)
            if parsed is not None:
                out.append(parsed)
    return out


@functools.cache
def sae_lens_directory() -> tuple[DirectorySae, ...]:
    """The SAEs of sae-lens's installed directory (parsed once per process)."""
    import yaml

    with sae_lens_yaml().open() as file:
        data = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return tuple(parse_directory(data))


def model_key(name: str) -> str:
    """A model name reduced to what the SAE directory and a run's --model have in common:
    the last path component, lower case, without -it/-pt/-instruct/-base/-chat/-hf suffixes."""
    key = name.rstrip("/").split("/")[-1].lower()
    key = _ALIASES.get(key, key)
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                changed = True
    return key


def width_value(width: str | None) -> float:
    """A sortable number of features ("16k" -> 16000); unknown widths sort last."""
    if not width:
        return float("inf")
    scale = {"k": 1e3, "m": 1e6}.get(width[-1], 1.0)
    return float(width.rstrip("km")) * scale


def span(layers: list[int] | tuple[int, ...]) -> str:
    """Layers as "0-25" when contiguous and long, else "5,9,12,15"."""
    layers = sorted(set(layers))
    if len(layers) > 4 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(str(layer) for layer in layers)

"""Which sae-lens SAE release fits which model: Gemma Scope (Gemma 2) and Gemma Scope 2 (Gemma 3).

Each `SaeRelease` is one sae-lens release for one model shape. Plugins add their own through the
``register_sae_releases`` hook (``registry.add(name, factory)`` where ``factory()`` returns a
`SaeRelease`). The table is matched on the HF ``model_type``, the depth and the width, all known
from the model's config before any weight loads.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class SaeRelease:
    """One sae-lens release of residual-stream SAEs (``blocks.{L}.hook_resid_post``)."""

    release: str  # the sae-lens release name
    family: str  # "Gemma Scope", "Gemma Scope 2", ...
    model_types: tuple[str, ...]  # HF config.model_type values it fits
    n_layers: int
    d_model: int
    layers: tuple[int, ...]  # layers that have an SAE
    sae_id_template: str  # formatted with ``layer=``
    d_sae: int
    example_model: str  # a model id it was trained on (for messages)
    instruction_tuned: bool = False

    def fits(self, model_type: str | None, n_layers: int, d_model: int) -> bool:
        return model_type in self.model_types and n_layers == self.n_layers and d_model == self.d_model

    def sae_id(self, layer: int) -> str:
        return self.sae_id_template.format(layer=layer)

    def describe(self) -> str:
        return (f"{self.release} ({self.family}; {self.example_model}: model_type {self.model_types[0]}, "
                f"{self.n_layers} layers, width {self.d_model}; SAE layers {_span(self.layers)})")


def _span(layers: tuple[int, ...]) -> str:
    if len(layers) > 4 and layers == tuple(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(str(layer) for layer in layers)


def _gemma_scope() -> list[SaeRelease]:
    """Gemma Scope (Lieberum et al. 2024): JumpReLU SAEs on Gemma 2, 16k canonical widths."""
    types = ("gemma2",)
    return [
        SaeRelease("gemma-scope-2b-pt-res-canonical", "Gemma Scope", types, 26, 2304, tuple(range(26)),
                   "layer_{layer}/width_16k/canonical", 16384, "google/gemma-2-2b"),
        SaeRelease("gemma-scope-9b-pt-res-canonical", "Gemma Scope", types, 42, 3584, tuple(range(42)),
                   "layer_{layer}/width_16k/canonical", 16384, "google/gemma-2-9b"),
        SaeRelease("gemma-scope-9b-it-res-canonical", "Gemma Scope", types, 42, 3584, (9, 20, 31),
                   "layer_{layer}/width_16k/canonical", 16384, "google/gemma-2-9b-it", True),
        SaeRelease("gemma-scope-27b-pt-res-canonical", "Gemma Scope", types, 46, 4608, (10, 22, 34),
                   "layer_{layer}/width_131k/canonical", 131072, "google/gemma-2-27b"),
    ]


#: Gemma 3 sizes: (name, depth, width, layers of the curated "-res" release)
_GEMMA3_SIZES = (
    ("270m", 18, 640, (5, 9, 12, 15)),
    ("1b", 26, 1152, (7, 13, 17, 22)),
    ("4b", 34, 2560, (9, 17, 22, 29)),
    ("12b", 48, 3840, (12, 24, 31, 41)),
    ("27b", 62, 5376, (16, 31, 40, 53)),
)


def _gemma_scope_2() -> list[SaeRelease]:
    """Gemma Scope 2: SAEs on Gemma 3. The curated ``-res`` release covers four layers per size
    (with a medium-L0 16k SAE); ``-res-all`` covers every layer (small and big L0 only)."""
    types = ("gemma3_text", "gemma3")
    out = []
    for size, depth, width, curated in _GEMMA3_SIZES:
        for variant in ("pt", "it"):
            model = f"google/gemma-3-{size}" + ("-it" if variant == "it" else ("" if size == "270m" else "-pt"))
            tuned = variant == "it"
            out.append(SaeRelease(f"gemma-scope-2-{size}-{variant}-res", "Gemma Scope 2", types, depth, width,
                                  curated, "layer_{layer}_width_16k_l0_medium", 16384, model, tuned))
            out.append(SaeRelease(f"gemma-scope-2-{size}-{variant}-res-all", "Gemma Scope 2", types, depth, width,
                                  tuple(range(depth)), "layer_{layer}_width_16k_l0_small", 16384, model, tuned))
    return out


def builtin_releases() -> list[SaeRelease]:
    return _gemma_scope() + _gemma_scope_2()

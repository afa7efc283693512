"""Sparse autoencoders: sae-lens's SAE directory, the compatibility check, encoding.

`releases` and `compat` import nothing heavy, so the check runs before any weight is loaded;
`encode` imports torch and sae-lens.
"""

from deception_core.base.registry import Kind
from deception_core.sae.compat import SaeChoice, model_names, resolve_sae, saes_for_model
from deception_core.sae.releases import DirectorySae, sae_lens_directory

__all__ = ["DirectorySae", "SaeChoice", "model_names", "resolve_sae", "sae_lens_directory", "saes_for_model"]


def registered_saes(registry) -> list[DirectorySae]:
    """Every SAE the plugins register (sae-lens's directory from the core, plus any plugin's own)."""

    out: list[DirectorySae] = []
    for entry in registry.entries(Kind.SAE_RELEASE):
        loaded = entry.load()
        out.extend(loaded if isinstance(loaded, (list, tuple)) else [loaded])
    return out

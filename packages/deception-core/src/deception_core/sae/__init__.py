"""Sparse autoencoders: the release table per model family, the compatibility check, encoding.

`releases` and `compat` import nothing heavy, so the check runs before any weight is loaded;
`encode` imports torch and sae-lens.
"""

from deception_core.sae.compat import SaeChoice, resolve_sae
from deception_core.sae.releases import SaeRelease, builtin_releases

__all__ = ["SaeChoice", "SaeRelease", "builtin_releases", "resolve_sae"]

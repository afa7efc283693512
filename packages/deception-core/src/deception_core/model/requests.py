"""What a generation call is asked: the prompts and the decoding settings.

Plain records, apart from `deception_core.model.generation` (which needs torch and transformers), so
that the capture contract and the command line can name them without loading either.
"""

from __future__ import annotations

import attrs

__all__ = ["GenerationRequest", "Sampling"]


@attrs.frozen
class Sampling:
    """Decoding settings; ``temperature == 0`` is greedy."""

    temperature: float = 0.7
    top_p: float = 0.9

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@attrs.frozen
class GenerationRequest:
    """One prompt (token ids) to answer; ``seed`` drives its own sampler, ``stop`` ends its reply."""

    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    seed: int
    capture: bool = True
    stop: tuple[str, ...] = ()

"""A tiny Llama with planted directions, for known-answer tests of the causal package.

After block ``LAYER`` the remaining blocks are identities (their output projections are zero), so
the final RMSNorm and the unembedding read the residual stream after ``LAYER`` directly:

* ``causal`` (u): the unembedding row of ``TARGET`` is ``GAIN * u``; adding u raises that token's
  probability, removing it lowers it. ``TRIGGER``'s embedding carries ``+u``, so prompts ending
  in it have the direction "on".
* ``decoy`` (v, orthogonal to u): ``DECOY``'s embedding carries ``+v``, so a probe can read it,
  but no unembedding row uses it: it is readable and causally inert.
* ``base`` (b) sits in every other embedding and makes the digit ``3`` the favourite next token;
  ``end`` (e) sits in the embedding of ``3`` and makes end-of-text follow it. Replies of the echo
  test game are therefore mostly "3" (honest when the secret is 3, deceptive otherwise).
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

LAYER = 1
TRIGGER, DECOY, TARGET = 250, 251, 315  # TARGET decodes to "Deal"
GAIN = 1.0


@attrs.frozen
class Planted:
    model: object
    tokenizer: object
    layer: int
    causal: np.ndarray  # u
    decoy: np.ndarray  # v
    three: int


def build_planted(seed: int = 0) -> Planted:
    from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

    model = tiny_hf_model("llama", n_layers=4, d_model=64, seed=seed)
    tokenizer = tiny_tokenizer()
    d = model.config.hidden_size
    generator = torch.Generator().manual_seed(seed + 1)
    basis = torch.linalg.qr(torch.randn(d, 4, generator=generator))[0].T  # orthonormal rows
    u, v, b, e = basis
    three = tokenizer.convert_tokens_to_ids("3")
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        for index, block in enumerate(model.model.layers):
            if index > LAYER:
                block.self_attn.o_proj.weight.zero_()
                block.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        embed += b  # every token: "say 3"
        embed[three] += e - b  # after "3": end of text
        embed[TRIGGER] += u - b
        embed[DECOY] += v - b
        head = model.lm_head.weight
        head.normal_(0.0, 0.02, generator=generator)
        head[TARGET] = GAIN * u
        head[three] = b
        head[eos] = e
    return Planted(model.eval(), tokenizer, LAYER, u.numpy().astype(np.float64), v.numpy().astype(np.float64), three)

"""The SAE part of faithfulness: splice an SAE's reconstruction into the residual stream.

Replacing the residual after the SAE's layer by the reconstruction (no error term) shows how much
next-token loss the SAE's features fail to carry; adding the error term back must restore the
clean loss exactly (a check of the splice); a random change of the same per-position norm as the
error is the null. The probe's AUROC on reconstructed activations shows whether the features keep
what the probe reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from deception_causal.common import stored_reply
from deception_causal.direction import labelled_rows
from deception_causal.interventions import teacher_forced
from deception_causal.options import DEFAULT_SAMPLES
from deception_causal.selection import choose_prompts
from deception_causal.stats import binary_auroc, compare_with_null, random_unit_directions
from deception_core import JSONObject, SaeSettings, get_plugin_set, load_sae, registered_saes, resolve_sae, sae_settings

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformers import PreTrainedModel

    from deception_core import CausalContext, ProbeDirection

Reconstruct = Callable[[torch.Tensor], torch.Tensor]


class SpliceEdit:
    """Row 0: clean; row 1: reconstruction; row 2: reconstruction + error; row 3 + k: the clean state
    plus a change of the error's norm along ``random_units[k]`` (every position)."""

    def __init__(self, reconstruct: Reconstruct, random_units: np.ndarray, offset: int = 0) -> None:
        self.reconstruct = reconstruct
        self.random_units = torch.as_tensor(np.asarray(random_units, dtype=np.float32))
        self.offset = offset

    def rows(self, start: int, stop: int) -> SpliceEdit:
        return SpliceEdit(self.reconstruct, self.random_units.numpy(), self.offset + start)

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        x = hidden.float()
        x_hat = self.reconstruct(x).float()
        error = x - x_hat
        out = x.clone()
        for row in range(x.shape[0]):
            index = self.offset + row
            if index == 1:
                out[row] = x_hat[row]
            elif index == 2:
                out[row] = x_hat[row] + error[row]
            elif index >= 3:
                r = self.random_units[index - 3].to(x.device)
                out[row] = x[row] + error[row].norm(dim=-1, keepdim=True) * r
        return out.to(hidden.dtype)


def splice_losses(hf_model: PreTrainedModel, prompt: Sequence[int], reply: Sequence[int], layer: int, reconstruct: Reconstruct,
                  random_units: np.ndarray, pad_id: int = 0) -> dict[str, Any]:
    """Mean next-token NLL of ``reply`` (nats/token): clean, spliced without and with the error term,
    and with a norm-matched random change per random unit."""
    k = 3 + len(random_units)
    out = teacher_forced(hf_model, [prompt] * k, [reply] * k, {layer: SpliceEdit(reconstruct, random_units)},
                         pad_id=pad_id)
    nll = np.array([float(-lp.mean()) for lp in out.reply_logprobs])
    return {"clean": nll[0], "without_error": nll[1], "with_error": nll[2], "random": nll[3:]}


def sae_reconstructor(sae: SAE) -> Reconstruct:
    """``x -> decode(encode(x))`` in the SAE's dtype and device, returned in ``x``'s."""
    parameter = next(sae.parameters())

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            y = sae.decode(sae.encode(x.to(parameter.device, parameter.dtype)))
        spliced: torch.Tensor = y.to(x.device, x.dtype)
        return spliced

    return reconstruct


def run_sae_settings(context: CausalContext) -> SaeSettings | None:
    """The SAE settings of the run the context comes from (None when it encodes no SAE layer)."""
    run = getattr(context, "run", None)
    components = run.components if run is not None else getattr(context.config, "components", {})
    return sae_settings(components)


def load_run_sae(context: CausalContext) -> tuple[SAE, int]:
    """The run's SAE (resolved from its settings as the run did) and its layer."""

    config, model = context.config, context.model
    settings = run_sae_settings(context)
    if settings is None:
        raise ValueError("the run has no --sae")
    choice = resolve_sae(layer=settings.layer, model_id=config.model, model_type=model.model_type,
                         n_layers=model.n_layers, d_model=model.d_model, saes=registered_saes(get_plugin_set().registry),
                         release=settings.release, sae_id=settings.id, path=settings.path)
    device = str(next(model.hf_model.parameters()).device)
    return load_sae(choice, device=device), int(choice.layer)


def sae_reconstruction_result(context: CausalContext, reconstruct: Reconstruct, layer: int, n_random: int,
                              direction: ProbeDirection | None = None, *, samples: int = DEFAULT_SAMPLES
                              ) -> JSONObject:
    """Splice the reconstruction into the run's own prompts and original replies; the probe's AUROC
    on reconstructed activations when the probe reads the SAE's layer."""

    dataset, model = context.dataset, context.model
    seed = int(getattr(context.config, "seed", 0))
    rows = choose_prompts(dataset, samples, seed)
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    randoms = random_unit_directions(model.d_model, n_random, seed * 1000 + 7)
    clean, without, with_error, null = [], [], [], []
    for row in rows:
        reply = stored_reply(dataset, row, model.tokenizer)
        if not reply:
            continue
        losses = splice_losses(model.hf_model, dataset.prompt_ids(row), reply, layer, reconstruct, randoms, pad_id)
        clean.append(losses["clean"])
        without.append(losses["without_error"] - losses["clean"])
        with_error.append(losses["with_error"] - losses["clean"])
        null.append(losses["random"] - losses["clean"])
    if not clean:
        return {"status": "not_run", "reason": "every chosen prompt has an empty reply", "layer": layer}
    effect = compare_with_null(np.array(without), np.array(null).T, name="next-token loss change, SAE reconstruction "
                               "without the error term", unit="nats/token", seed=seed, expected_sign=1)
    out: JSONObject = {
        "status": "ok", "layer": layer, "n_prompts": len(clean),
        "clean_loss": float(np.mean(clean)),
        "loss_change_without_error": effect,
        "loss_change_with_error": {"mean": float(np.mean(with_error)), "abs_max": float(np.max(np.abs(with_error))),
                                   "note": "the error term restores the clean state, so this must be ~0"},
        "null": "a change of the error's norm at every position along random unit directions",
    }
    if direction is not None and direction.layer == layer:
        labelled, y = labelled_rows(dataset)
        if len(set(y.tolist())) == 2:
            X = np.asarray(dataset.matrix(layer, direction.position), dtype=np.float32)[labelled]
            X_hat = reconstruct(torch.from_numpy(X)).double().numpy()
            out["probe_auroc"] = {"original": binary_auroc(y, direction.score(X)),
                                  "reconstructed": binary_auroc(y, direction.score(X_hat)),
                                  "position": direction.position, "n": int(len(y))}
    else:
        out["probe_auroc"] = None
        out["probe_auroc_reason"] = "the probe does not read the SAE's layer"
    return out

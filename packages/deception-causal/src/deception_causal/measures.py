"""Causal measurements on one prompt with plain tensors: the building blocks of the tests.

Each function runs one batched teacher-forced pass in which row ``k`` carries the ``k``-th
intervention, and returns the mean per-token log-probability of a fixed reply per row. The
known-answer tests call these directly on a model with a planted direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from deception_causal.interventions import EditSites, RowEdit, teacher_forced
from deception_core import replies_from_last_prompt_token

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def _rows(vectors: np.ndarray | torch.Tensor | None, k: int, d: int) -> torch.Tensor:
    if vectors is None:
        return torch.zeros(k, d)
    return torch.as_tensor(np.asarray(vectors, dtype=np.float32)).reshape(k, d)


def _mean_logprob(values: torch.Tensor) -> float:
    return float(values.mean()) if values.numel() else float("nan")


#: per layer: (``[n, d]`` unit vectors to project out or None, ``[n, d]`` vectors to add or None)
LayerRows = Mapping[int, tuple[np.ndarray | None, np.ndarray | None]]


def reply_logprobs(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]], replies: Sequence[Sequence[int]],
                   edits: LayerRows | None = None, pad_id: int = 0, chunk: int = 16,
                   prompt_delta: tuple[int, torch.Tensor] | None = None, sites: EditSites = "all") -> np.ndarray:
    """``[n]`` mean log p(replies[i] | prompts[i]) with row ``i``'s edits, ``chunk`` rows per forward pass.

    Rows of many prompts and many directions share passes: they are run in order of length (so a
    pass pads little) and returned in the given order. ``prompt_delta``: ``(layer, [n, m, d])``
    added to the last ``m`` prompt positions of each row (zero-padded at the front for shorter
    patches), as patching does. ``sites``: where ``edits`` act, ``"all"`` (every position but the
    first) or ``"reply"`` (from the last prompt token on: each distinct prompt's unedited part then
    runs once, see `deception_core.replies_from_last_prompt_token`).
    """
    n = len(prompts)
    if n == 0:
        return np.zeros(0)
    if sites not in ("all", "reply"):
        raise ValueError(f"sites must be 'all' or 'reply', got {sites!r}")
    if sites == "reply" and edits:
        if prompt_delta is not None:
            raise ValueError("a prompt delta edits the prompt: it cannot be combined with sites='reply'")
        return _reply_site_logprobs(hf_model, prompts, replies, edits, pad_id, chunk)
    order = sorted(range(n), key=lambda i: len(prompts[i]) + len(replies[i]))
    pick = torch.as_tensor(order, dtype=torch.long)
    layer_edits: dict[int, RowEdit] = {}
    for layer, (project, add) in (edits or {}).items():
        source = project if project is not None else add
        d = np.asarray(source).shape[1]
        layer_edits[layer] = RowEdit(project=None if project is None else _rows(project, n, d)[pick],
                                     add=None if add is None else _rows(add, n, d)[pick])
    if prompt_delta is not None:
        layer, delta = prompt_delta
        patch = RowEdit(prompt_delta=delta[pick].float(), prompt_end=tuple(len(prompts[i]) for i in order))
        if layer in layer_edits:
            raise ValueError("a prompt delta and another edit at the same layer are not combined")
        layer_edits[layer] = patch
    out = teacher_forced(hf_model, [prompts[i] for i in order], [replies[i] for i in order], layer_edits,
                         pad_id=pad_id, chunk=chunk)
    values = np.empty(n)
    for place, row in enumerate(order):
        values[row] = _mean_logprob(out.reply_logprobs[place])
    return values


def _reply_site_logprobs(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]], replies: Sequence[Sequence[int]],
                         edits: LayerRows, pad_id: int, chunk: int) -> np.ndarray:
    """`reply_logprobs` with the edits from each row's last prompt token on."""
    n = len(prompts)

    def row_edits(order: Sequence[int], start: tuple[int, ...] | None = None) -> dict[int, RowEdit]:
        pick = torch.as_tensor(list(order), dtype=torch.long)
        out = {}
        for layer, (project, add) in edits.items():
            d = np.asarray(project if project is not None else add).shape[1]
            out[layer] = RowEdit(project=None if project is None else _rows(project, n, d)[pick],
                                 add=None if add is None else _rows(add, n, d)[pick], keep_first=False, start=start)
        return out

    fast = replies_from_last_prompt_token(hf_model, prompts, replies, row_edits(range(n)), chunk=chunk)
    if fast is not None:
        return np.array([_mean_logprob(lp) for lp in fast])
    order = sorted(range(n), key=lambda i: len(prompts[i]) + len(replies[i]))
    out = teacher_forced(hf_model, [prompts[i] for i in order], [replies[i] for i in order],
                         row_edits(order, tuple(len(prompts[i]) - 1 for i in order)), pad_id=pad_id, chunk=chunk)
    values = np.empty(n)
    for place, row in enumerate(order):
        values[row] = _mean_logprob(out.reply_logprobs[place])
    return values


def centred_ablation(units: np.ndarray, mean: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The (project, add) rows that ablate each of ``units`` about ``mean``: ``h - ((h - mean).u)u``,
    which is ``h - (h.u)u + (mean.u)u``; with ``mean`` None, the uncentred ``h - (h.u)u``."""
    units = np.atleast_2d(np.asarray(units, dtype=np.float64))
    if mean is None:
        return units, None
    return units, (units @ np.asarray(mean, dtype=np.float64))[:, None] * units


def reply_logprob_rows(hf_model: PreTrainedModel, prompt: Sequence[int], reply: Sequence[int], layers: Sequence[int],
                       add: np.ndarray | None = None, project: np.ndarray | None = None,
                       pad_id: int = 0) -> np.ndarray:
    """``[k]`` mean log p(reply | prompt) with row ``k`` adding ``add[k]`` and projecting out
    ``project[k]`` (a zero row does nothing) at each of ``layers``, at every position."""
    source = add if add is not None else project
    k, d = np.asarray(source).shape
    edit = RowEdit(project=_rows(project, k, d) if project is not None else None,
                   add=_rows(add, k, d) if add is not None else None)
    out = teacher_forced(hf_model, [prompt] * k, [reply] * k, {layer: edit for layer in layers}, pad_id=pad_id)
    return np.array([_mean_logprob(lp) for lp in out.reply_logprobs])


def steering_curve(hf_model: PreTrainedModel, prompt: Sequence[int], reply: Sequence[int], layer: int, unit: np.ndarray,
                   scale: float, alphas: Sequence[float], pad_id: int = 0) -> np.ndarray:
    """Mean log p(reply) when ``alpha * scale * unit`` is added at ``layer``, for each alpha."""
    adds = np.outer(np.asarray(alphas, dtype=np.float64), np.asarray(unit, dtype=np.float64) * scale)
    return reply_logprob_rows(hf_model, prompt, reply, [layer], add=adds, pad_id=pad_id)


def ablation_change(hf_model: PreTrainedModel, prompt: Sequence[int], reply: Sequence[int], layers: Sequence[int],
                    units: np.ndarray, pad_id: int = 0,
                    means: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
    """``[k]`` change of mean log p(reply) when ``units[k]`` is projected out at ``layers`` (vs none);
    with ``means`` (layer -> mean state), about that mean (`centred_ablation`), else about zero."""
    units = np.atleast_2d(np.asarray(units, dtype=np.float64))
    rows = np.vstack([np.zeros((1, units.shape[1])), units])
    edits = {layer: centred_ablation(rows, None if means is None else means[layer]) for layer in layers}
    values = reply_logprobs(hf_model, [prompt] * len(rows), [reply] * len(rows), edits, pad_id=pad_id,
                            chunk=len(rows))
    return np.asarray(values[1:] - values[0])


def prompt_states(hf_model: PreTrainedModel, prompt: Sequence[int], layer: int, pad_id: int = 0) -> torch.Tensor:
    """``[len(prompt), d]`` residual stream after ``layer`` over the prompt."""
    return teacher_forced(hf_model, [prompt], [[]], record=[layer], pad_id=pad_id).hidden[layer][0]


def patch_deltas(source: torch.Tensor, target: torch.Tensor, unit: np.ndarray,
                 random_units: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """What patching source into target adds to the target's states, aligned at the prompt end.

    ``full``: the whole state difference. ``direction``: its component along ``unit``.
    ``random``: ``[k, n, d]``, for each random unit vector ``r`` a change of the same norm as the
    direction patch at every position, along ``r`` (the norm-matched control).

    The first position of either prompt is never patched: it holds the beginning-of-sequence
    token, an attention sink whose state has massive activations in models such as Gemma. When
    the prompts differ in length, end alignment would pair one prompt's first position with an
    ordinary token of the other, and moving that state along the probe direction (or a random
    one) wrecks every later position, whatever the direction means.
    """
    n = max(0, min(source.shape[0], target.shape[0]) - 1)
    diff = (source[source.shape[0] - n:] - target[target.shape[0] - n:]).float()
    u = torch.as_tensor(np.asarray(unit, dtype=np.float32))
    along = diff @ u
    out = {"full": diff, "direction": along[:, None] * u[None, :]}
    if random_units is not None:
        r = torch.as_tensor(np.asarray(random_units, dtype=np.float32))
        out["random"] = along.abs()[None, :, None] * r[:, None, :]
    return out


def patched_reply_logprob(hf_model: PreTrainedModel, prompt: Sequence[int], reply: Sequence[int], layer: int,
                          deltas: torch.Tensor, pad_id: int = 0) -> np.ndarray:
    """``[k]`` mean log p(reply | prompt) with ``deltas[k]`` (``[n, d]``) added to the last ``n``
    prompt positions at ``layer``; row 0 of the output is the unpatched pass."""
    deltas = torch.cat([torch.zeros_like(deltas[:1]), deltas]) if deltas.ndim == 3 else torch.stack(
        [torch.zeros_like(deltas), deltas])
    k = deltas.shape[0]
    edit = RowEdit(prompt_delta=deltas, prompt_end=tuple([len(prompt)] * k))
    out = teacher_forced(hf_model, [prompt] * k, [reply] * k, {layer: edit}, pad_id=pad_id)
    return np.array([_mean_logprob(lp) for lp in out.reply_logprobs])

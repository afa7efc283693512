"""Residual-stream edits of the causal tests; the teacher-forced passes that apply them are the
model surface's (`deception_core.model.forced`, re-exported here).

Every function takes a model and tensors, not a run, so the known-answer tests can call them
directly. An intervention edits the output of decoder block ``layer`` (the residual stream the
capture backends record), exactly as `deception_core.contracts.capture.Intervention` does during
generation. Per-row edits let one batched forward pass evaluate many directions at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch

from deception_core import ForcedPass, LayerEdit, as_interventions, hooked, teacher_forced

__all__ = ["EditSites", "ForcedPass", "LayerEdit", "RowEdit", "as_interventions", "hooked", "position_vector",
           "teacher_forced"]

#: where steering and ablation act: from the last prompt token on ("reply") or at every position but the
#: first ("all"); see `deception_causal.common.EDIT_SITES`
EditSites = Literal["reply", "all"]


@attrs.frozen
class RowEdit:
    """An edit of one layer's output, row by row: ``x - (x.u) u + v``, plus prompt-position deltas.

    ``project``: ``[batch, d]`` unit vectors to project out (zero rows leave ``x`` alone; the
    residual is never zeroed). ``add``: ``[batch, d]`` added at every position and step.
    ``prompt_delta``: ``[batch, n, d]`` added on the prompt pass only, to the last ``n`` prompt
    positions, which end at ``prompt_end[row]`` (teacher forcing, right padding) or at the end of
    the sequence (generation, left padding). Patching is such a delta: source minus target state,
    whole or along a direction.

    ``project`` and ``add`` leave each row's FIRST token alone on the prompt pass, as patching does:
    it is the attention sink (beginning of sequence), where models such as Gemma keep massive
    activations in a few dimensions; a direction leaning on those dimensions, projected out or
    added there, wrecks every later position and measures damage, not the direction's role.
    ``first[row]`` is that token's index on the prompt pass (left padding: the number of pad
    positions); None means index 0 (right padding or none). ``keep_first=False`` edits it too (only
    to show the damage in tests).

    ``start[row]``: on the prompt pass, the row is edited only from that position on (later steps
    are always edited): the causal tests' reply sites, from the last prompt token on, on a pass over
    the whole prompt (see `deception_core.model.conditions`).
    """

    project: torch.Tensor | None = None
    add: torch.Tensor | None = None
    prompt_delta: torch.Tensor | None = None
    prompt_end: tuple[int, ...] | None = None
    first: tuple[int, ...] | None = None
    keep_first: bool = True
    start: tuple[int, ...] | None = None

    def rows(self, start: int, stop: int) -> RowEdit:
        """The edit of rows ``start:stop`` (for running a batch in chunks)."""
        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[start:stop]

        return RowEdit(cut(self.project), cut(self.add), cut(self.prompt_delta),
                       None if self.prompt_end is None else self.prompt_end[start:stop],
                       None if self.first is None else self.first[start:stop], self.keep_first,
                       None if self.start is None else self.start[start:stop])

    def take(self, index: Sequence[int]) -> RowEdit:
        """The edit of rows ``index``, in that order (rows leaving a decoding batch)."""
        pick = torch.as_tensor(list(index), dtype=torch.long)

        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[pick]

        def cut_tuple(values: tuple[int, ...] | None) -> tuple[int, ...] | None:
            return None if values is None else tuple(values[i] for i in index)

        return RowEdit(cut(self.project), cut(self.add), cut(self.prompt_delta), cut_tuple(self.prompt_end),
                       cut_tuple(self.first), self.keep_first, cut_tuple(self.start))

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        dtype = hidden.dtype
        x = original = hidden.float()
        if self.project is not None:
            u = self.project.to(x.device)[:, None, :]
            x = x - (x * u).sum(-1, keepdim=True) * u
        if self.add is not None:
            x = x + self.add.to(x.device)[:, None, :]
        if step == 0 and self.start is not None and x is not original:
            starts = torch.as_tensor(self.start, device=x.device)[:, None]
            edited = torch.arange(x.shape[1], device=x.device)[None, :] >= starts
            x = torch.where(edited[:, :, None], x, original)
        if step == 0 and self.keep_first and x is not original:
            rows = torch.arange(x.shape[0], device=x.device)
            first = torch.as_tensor(self.first if self.first is not None else [0] * x.shape[0], device=x.device)
            x = x.clone()
            x[rows, first] = original[rows, first]
        if self.prompt_delta is not None and step == 0:
            delta = self.prompt_delta.to(x.device)
            n = delta.shape[1]
            x = x.clone()
            for row in range(x.shape[0]):
                end = self.prompt_end[row] if self.prompt_end is not None else x.shape[1]
                m = min(n, end)  # rows of a batch share n: shorter prompts' deltas are zero-padded at the front
                x[row, end - m:end] += delta[row, n - m:]
        return x.to(dtype)


def position_vector(hidden: torch.Tensor, n_prompt: int, position: str) -> torch.Tensor:
    """The state a capture backend records at ``position`` from a teacher-forced ``[seq, d]`` pass.

    Reply token ``k`` is the input at sequence position ``n_prompt + k``; a reply with no tokens
    falls back to the last prompt token, as the ``hf`` backend does.
    """
    reply = hidden[n_prompt:]
    if position == "last_prompt" or reply.shape[0] == 0:
        return hidden[n_prompt - 1]
    if position == "reply_last":
        return reply[-1]
    return reply.mean(dim=0)

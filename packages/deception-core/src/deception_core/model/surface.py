"""The model surface: one typed object over a loaded causal LM, and the one routine that loads it.

Every way the toolkit touches a model goes through `Model`: generation with capture, teacher-forced
passes with a cache of chosen layers and positions, interventions on the residual stream (add,
project out, patch) as context managers, log-probabilities of given replies, and shared-prefix
scoring of fixed answers. Layer ``L`` is the output of decoder block ``L`` (0-based), the residual
stream the capture backends record.

From a notebook::

    m = load_model("embedded:gemma-3-270m")
    cache = m.run_with_cache(["The sky is green."], layers=[4, 9])
    with m.steer(direction, 4.0, layers=[6]):
        replies = m.generate(["Tell me about the sky."], max_new_tokens=20)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import attrs

from deception_core.base.errors import UsageError
from deception_core.base.types import JSONObject
from deception_core.model.device import resolve_device, resolve_dtype
from deception_core.model.fingerprint import model_fingerprint
from deception_core.model.hooks import decoder_layers
from deception_core.model.intervention import EditSites, Intervention
from deception_core.model.loading import read_weights
from deception_core.model.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from deception_core.model.cache import ActivationCache, Counter
    from deception_core.model.conditions import SelectableEdit
    from deception_core.model.forced import ForcedPass, LayerEdit
    from deception_core.model.generation import (
        Generated,
        GenerationRequest,
        RecorderFactory,
        Sampling,
        StopTokens,
    )
    from deception_core.model.shared_prefix import PrefixMemory

log = logging.getLogger("deception.models")

#: values in the residual stream: a tensor, a numpy array or a list of floats (``[d_model]`` for a direction)
Vector = Union["torch.Tensor", "npt.NDArray[np.generic]", Sequence[float]]


@attrs.define
class Model:
    """An HF causal LM with its tokenizer, the facts a dataset records about it, and every forward pass."""

    hf_model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_id: str
    source: str
    revision: str | None
    dtype: str
    device: str
    n_layers: int
    d_model: int
    model_type: str
    local_dir: Path | None  # a directory holding weights + tokenizer, when there is one
    tl_name: str | None = None
    _fingerprint: JSONObject | None = attrs.field(default=None, init=False, repr=False)
    #: interventions of the open `steer`/`ablate`/`patch` blocks, applied to every forward pass
    _active: list[Intervention] = attrs.field(factory=list, init=False, repr=False)
    _stop: StopTokens | None = attrs.field(default=None, init=False, repr=False)
    _memories: dict[tuple[int, ...], PrefixMemory] = attrs.field(factory=dict, init=False, repr=False)

    # ---- facts ---------------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def describe(self) -> JSONObject:
        """What a dataset records about the model (``meta["model"]``)."""
        return {
            "id": self.model_id,
            "source": self.source,
            "revision": self.revision,
            "dtype": self.dtype,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "model_type": self.model_type,
            "chat_template": self.has_chat_template,
            "fingerprint": self.fingerprint,
        }

    @property
    def fingerprint(self) -> JSONObject:
        """Depth, width and hashes of the config and the weights' metadata (`deception_core.model.fingerprint`)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.hf_model)
        return self._fingerprint

    @property
    def input_device(self) -> torch.device:
        """Where inputs go (the first GPU of a model split over several)."""
        import torch  # here, not at the top: the command line imports this module and must not load torch

        weight = self.hf_model.get_input_embeddings().weight
        assert isinstance(weight, torch.Tensor)
        return weight.device

    @property
    def pad_id(self) -> int:
        """The id padding uses: the tokenizer's pad token, else its end of sequence, else 0."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        return int(pad or 0)

    @property
    def stop_tokens(self) -> StopTokens:
        """The ids that end a reply (the generation config's and the tokenizer's EOS) and generation's pad id."""
        if self._stop is None:
            from deception_core.model.generation import StopTokens  # heavy: torch

            self._stop = StopTokens.of(self.hf_model, self.tokenizer)
        return self._stop

    @property
    def layers_module(self) -> torch.nn.ModuleList:
        return decoder_layers(self.hf_model)

    def check_layers(self, layers: Sequence[int]) -> tuple[int, ...]:
        """``layers`` as ints, refusing (UsageError, exit 2) blocks the model does not have."""

        chosen = tuple(int(layer) for layer in layers)
        bad = [layer for layer in chosen if not 0 <= layer < self.n_layers]
        if bad:
            raise UsageError(f"layers {bad} do not exist: {self.model_id} has decoder blocks 0..{self.n_layers - 1}")
        return chosen

    def encode(self, text: str) -> list[int]:
        """``text``'s token ids, with the tokenizer's special tokens (a beginning-of-sequence token)."""
        return [int(i) for i in self.tokenizer(text, add_special_tokens=True)["input_ids"]]

    def _rows(self, texts_or_ids: Sequence[str] | Sequence[Sequence[int]]) -> list[list[int]]:
        return [self.encode(item) if isinstance(item, str) else [int(i) for i in item] for item in texts_or_ids]

    # ---- forward passes ------------------------------------------------------------------------

    def run_with_cache(self, texts_or_ids: Sequence[str] | Sequence[Sequence[int]], *, layers: Sequence[int],
                       positions: Sequence[int] | None = None, batch_size: int = 8, final_norm: bool = False,
                       bar: Counter | None = None) -> ActivationCache:
        """A teacher-forced pass recording decoder blocks ``layers`` at every token (or at the token
        indices ``positions``, negative from each row's end), under the open interventions.

        Texts are tokenised with the tokenizer's special tokens; rows are right-padded, ``batch_size``
        at a time, so each row's states equal its unpadded pass. See `deception_core.model.cache`."""
        from deception_core.model.cache import forward_cache  # heavy: torch

        return forward_cache(self.hf_model, self._rows(texts_or_ids), self.check_layers(layers), self.pad_id,
                             positions=positions, batch_size=batch_size, final_norm=final_norm,
                             interventions=tuple(self._active), bar=bar)

    def generate(self, prompts: Sequence[GenerationRequest] | Sequence[str], sampling: Sampling | None = None, *,
                 max_new_tokens: int = 64, layers: Sequence[int] = (), interventions: Sequence[Intervention] = (),
                 retire: bool = True, recorder: RecorderFactory | None = None) -> list[Generated]:
        """Generate a reply to each prompt in one batch, recording decoder blocks ``layers`` for the
        requests that ask for capture.

        ``prompts``: `GenerationRequest` objects (token ids, per-request seed, stop strings), or texts
        (tokenised with special tokens; greedy unless ``sampling`` says otherwise, ``max_new_tokens``
        each, captured when ``layers`` are given). ``interventions`` apply on top of the open
        `steer`/`ablate`/`patch` blocks. ``retire``: drop finished rows from the batch while decoding
        (`deception_core.model.retiring`; only without interventions and with a plain generation
        config); ``recorder`` replaces the decoder-block recorder (TransformerLens hook points)."""
        import torch

        # heavy: torch (and transformers); the command line imports this module without them
        from deception_core.model.generation import (
            GenerationRequest,
            LayerRecorder,
            Sampling,
            generate_plain,
        )
        from deception_core.model.retiring import generate_retiring, plain_generation_config  # heavy: torch

        if not prompts:
            return []
        requests = [item if isinstance(item, GenerationRequest) else
                    GenerationRequest(tuple(self.encode(item)), max_new_tokens, 0, capture=bool(layers))
                    for item in prompts]
        sampling = sampling if sampling is not None else Sampling(temperature=0.0)
        layers = self.check_layers(layers)
        edits = [*self._active, *interventions]
        record = any(r.capture for r in requests)
        with torch.inference_mode():
            if retire and not edits and recorder is None and plain_generation_config(self.hf_model):
                return generate_retiring(self.hf_model, self.tokenizer, self.stop_tokens, requests, sampling,
                                         self.layers_module, layers, self.input_device)
            made = (recorder(record, edits) if recorder is not None else
                    LayerRecorder(self.layers_module, layers, record and bool(layers), edits))
            return generate_plain(self.hf_model, self.tokenizer, self.stop_tokens, requests, sampling, made,
                                  self.input_device)

    def generate_conditions(self, requests: Sequence[GenerationRequest], edits: Mapping[int, SelectableEdit],
                            conditions: int, sampling: Sampling | None = None, *, sites: EditSites = "reply",
                            drop_share: float = 0.25, rows: int | None = None,
                            progress: Callable[[int], None] | None = None) -> list[Generated]:
        """A reply to each request under each of ``conditions`` row-wise edits (the conditions of a
        causal test): row ``i * conditions + k`` is request ``i`` under row ``i * conditions + k`` of
        each layer's edit. Each prompt's unedited part runs once; finished rows leave the batch and
        the next prompts' conditions take their place, ``rows`` at most decoding at once (default:
        all); ``progress(n)`` hears how many rows have finished. The open `steer`/`ablate` blocks
        apply to every row. See `deception_core.model.conditions.generate_conditions`."""
        from deception_core.model.conditions import generate_conditions  # heavy: torch
        from deception_core.model.generation import Sampling  # heavy: torch

        return generate_conditions(self.hf_model, self.tokenizer, self.stop_tokens, requests, edits, conditions,
                                   sampling if sampling is not None else Sampling(temperature=0.0),
                                   self.layers_module, self.input_device, sites, drop_share, tuple(self._active),
                                   rows, progress)

    def bare_generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, *,
                      fixed_length: bool = False) -> torch.Tensor:
        """Plain greedy HF ``generate`` over the left-padded prompts, no hooks, no capture, no open
        interventions (the baseline the benchmarks time): ``[rows, max_new_tokens]`` generated ids (rows
        that end early are padded). ``fixed_length``: every row writes ``max_new_tokens`` tokens (EOS ignored)."""
        import torch

        from deception_core.model.padding import pad_batch  # heavy: torch

        stop = self.stop_tokens
        ids, mask = pad_batch(prompts, stop.pad_id, side="left")
        kwargs: dict[str, object] = {"max_new_tokens": max_new_tokens, "do_sample": False, "temperature": None,
                                  "top_p": None, "top_k": None, "pad_token_id": stop.pad_id}
        if fixed_length:
            kwargs["min_new_tokens"] = max_new_tokens
        else:
            kwargs["eos_token_id"] = sorted(stop.eos_ids) or None
        device = self.input_device
        with torch.inference_mode():
            out = self.hf_model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)  # type: ignore[operator]  # transformers types generate loosely
        assert isinstance(out, torch.Tensor)
        return out[:, ids.shape[1]:]

    def teacher_forced(self, prompts: Sequence[Sequence[int]], replies: Sequence[Sequence[int]],
                       edits: Mapping[int, LayerEdit] | None = None, record: Sequence[int] = (),
                       chunk: int = 8, pad_id: int | None = None) -> ForcedPass:
        """Right-padded passes over ``prompt + reply`` per row under per-row ``edits`` (and the open
        interventions): reply log-probabilities, next-token log-probabilities, recorded blocks.
        See `deception_core.model.forced.teacher_forced`."""
        from deception_core.model.forced import teacher_forced  # heavy: torch

        return teacher_forced(self.hf_model, prompts, replies, edits, record,
                              self.pad_id if pad_id is None else pad_id, chunk, tuple(self._active))

    def logprobs(self, prompt_ids: Sequence[int], reply_ids: Sequence[int]) -> torch.Tensor:
        """``[len(reply_ids)]`` float32: log p(reply token k | prompt, reply tokens before k), teacher-forced."""
        return self.teacher_forced([list(prompt_ids)], [list(reply_ids)]).reply_logprobs[0]

    def score_choices(self, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]], *,
                      max_batch: int = 8, opening: Sequence[int] = ()) -> list[list[float]]:
        """``[prompt][answer]``: each answer's summed log-probability after each prompt, each prompt run
        once and shared prefixes once (``opening``: tokens many prompts start with, whose cache is
        kept for later calls). See `deception_core.model.scoring`."""
        from deception_core.model.scoring import score_answers  # heavy: torch
        from deception_core.model.shared_prefix import PrefixMemory  # heavy: torch

        memory = None
        if opening:
            key = tuple(int(t) for t in opening)
            memory = self._memories.setdefault(key, PrefixMemory(key))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return score_answers(self.hf_model, prompts, answers, int(pad), max_batch, memory)

    # ---- interventions -------------------------------------------------------------------------

    @contextmanager
    def intervening(self, interventions: Sequence[Intervention]) -> Iterator[Model]:
        """Apply ``interventions`` to every forward pass of the block."""
        added = list(interventions)
        self._active.extend(added)
        try:
            yield self
        finally:
            for item in added:
                self._active.remove(item)

    @contextmanager
    def steer(self, direction: Vector, alpha: float, *, layers: Sequence[int]) -> Iterator[Model]:
        """Add ``alpha`` times the unit vector of ``direction`` to the output of each of ``layers``, at
        every position and decoding step: the projection on the direction moves by exactly ``alpha``."""
        from deception_core.model.edits import add_along  # heavy: torch

        unit = self._unit(direction)
        with self.intervening([Intervention(layer, add_along(unit, float(alpha)))
                               for layer in self.check_layers(layers)]):
            yield self

    @contextmanager
    def ablate(self, direction: Vector, *, layers: Sequence[int], mean: float | None = None) -> Iterator[Model]:
        """Project ``direction`` out of the output of each of ``layers`` (``x - (x.u) u``), or with
        ``mean`` set the projection to that value (mean ablation: ``x - (x.u) u + mean u``)."""
        from deception_core.model.edits import project_out  # heavy: torch

        unit = self._unit(direction)
        with self.intervening([Intervention(layer, project_out(unit, mean)) for layer in self.check_layers(layers)]):
            yield self

    @contextmanager
    def patch(self, layer: int, positions: Sequence[int], values: Vector) -> Iterator[Model]:
        """Replace the output of block ``layer`` at sequence ``positions`` (indices into the padded
        batch; negative from its end) with ``values`` (``[len(positions), d]``, or ``[batch, len(positions),
        d]``) on the prompt pass; later decoding steps are left alone."""
        import torch

        from deception_core.model.edits import replace_at  # heavy: torch

        tensor = torch.as_tensor(values, dtype=torch.float32)
        (checked,) = self.check_layers([layer])
        with self.intervening([Intervention(checked, replace_at(tuple(int(p) for p in positions), tensor))]):
            yield self

    def _unit(self, direction: Vector) -> torch.Tensor:
        import torch

        vector = torch.as_tensor(direction, dtype=torch.float32).reshape(-1)
        if vector.shape[0] != self.d_model:
            raise ValueError(f"the direction has {vector.shape[0]} values; {self.model_id} has d_model {self.d_model}")
        norm = float(vector.norm())
        if norm == 0:
            raise ValueError("the direction is zero; it has no unit vector")
        return vector / norm


def from_hf(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, model_id: str, source: str,
            revision: str | None = None, local_dir: Path | None = None, tl_name: str | None = None) -> Model:
    """Wrap an already-built HF model (tests, research code). Sets left padding and a pad token."""
    import torch

    config = hf_model.config
    text = getattr(config, "text_config", None) or config
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    names = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}
    parameter = next(hf_model.parameters())
    return Model(
        hf_model=hf_model.eval(),
        tokenizer=tokenizer,
        model_id=model_id,
        source=source,
        revision=revision,
        dtype=names.get(parameter.dtype, str(parameter.dtype)),
        device=str(parameter.device.type),
        n_layers=len(decoder_layers(hf_model)),
        d_model=int(getattr(text, "hidden_size", getattr(text, "n_embd", 0))),
        model_type=str(getattr(text, "model_type", config.model_type)),
        local_dir=local_dir,
        tl_name=tl_name,
    )


def load_model(model: str | ModelSpec, *, device: str = "auto", dtype: str = "auto", revision: str | None = None,
               device_map: dict[str, Any] | None = None, random_weights: bool = False) -> Model:
    """Load ``model`` (``embedded:NAME``, a local folder or a Hugging Face id): the toolkit's one load routine.

    ``device``: ``auto`` (CUDA, else MPS, else CPU), ``cuda``, ``mps`` or ``cpu``; ``dtype``: ``auto``
    (float32 on CPU, bfloat16 elsewhere) or a name, which on CPU falls back to float32 with a notice.
    On CUDA with several GPUs a model that does not fit on the first is split over all of them;
    ``device_map`` gives such a placement explicitly. ``random_weights``: build the model from its
    folder's config.json with random weights (seed 0; benchmarks of models not downloaded)."""

    spec = model if isinstance(model, ModelSpec) else ModelSpec.parse(model)
    resolved = resolve_device(device)
    if dtype == "auto":
        dtype = "float32" if resolved == "cpu" else "bfloat16"
    dtype = resolve_dtype(dtype, resolved)
    weights = read_weights(spec, device=resolved, dtype=dtype, revision=revision, device_map=device_map,
                           random_weights=random_weights)
    model_id = f"{spec.raw} (random weights)" if random_weights else spec.raw
    return from_hf(weights.hf_model, weights.tokenizer, model_id=model_id, source=spec.source, revision=revision,
                   local_dir=weights.local_dir, tl_name=weights.tl_name)

"""Per-token activations of a dataset's stored replies, for analyses that score every reply token.

A dataset keeps every reply token only with ``--positions ...,reply_all``; the default keeps the
mean and the last. `TeacherForcedReplyStates` recovers the tokens' activations at one layer with
one teacher-forced pass over each sample's stored prompt and reply ids (the exact ids the model
saw and generated), so the per-token view costs one forward pass per reply instead of storing
``n_reply_tokens x d_model`` floats per sample. Reply token ``k`` is read where it is the input
(position ``n_prompt + k``), as the run's capture reads it during generation: the two agree up to
float noise (padding, batch shape, the cache of incremental decoding).

Analyses receive a `ReplyTokenStates` under ``options[REPLY_STATES_OPTION]`` (the run sets it
while its model is loaded; ``deception analyze --score-tokens`` loads the model for it).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deception_core.base.errors import UsageError
from deception_core.model import surface  # the module: tests replace its load_model
from deception_core.model.spec import ModelSpec
from deception_core.store.dataset import Dataset, resolve_dataset_dir
from deception_core.store.recorded import recorded_run_config
from deception_core.ui.progress import progress_bar

if TYPE_CHECKING:
    from deception_core.model.surface import Model

log = logging.getLogger("deception")

#: the key of ``options`` (`deception_core.contracts.analysis.Analysis.run`) holding a `ReplyTokenStates`
REPLY_STATES_OPTION = "reply_states"


class ReplyTokenStates(abc.ABC):
    """Where an analysis gets the activations of each reply token of a dataset at one layer."""

    @abc.abstractmethod
    def states(self, dataset: Dataset, layer: int, rows: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(row, [n_reply_tokens, d_model] float32)`` for each of ``rows`` (in any order)."""


def _field(sample: Any, name: str) -> Any:
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


class TeacherForcedReplyStates(ReplyTokenStates):
    """One right-padded forward pass over ``prompt_ids + reply_ids`` per sample, ``batch_size`` rows
    at a time (rows of similar length together), recording one decoder block's output with the
    hooks capture uses (`deception_core.model.surface.Model.run_with_cache`)."""

    def __init__(self, model: Model, batch_size: int = 8) -> None:
        self.model = model
        self.batch_size = max(1, int(batch_size))

    def states(self, dataset: Dataset, layer: int, rows: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        pairs = {int(row): (dataset.prompt_ids(int(row)), [int(i) for i in (_field(dataset.samples[int(row)],
                                                                                   "reply_ids") or ())])
                 for row in rows}
        order = sorted((row for row, (_, reply) in pairs.items() if reply), key=lambda r: sum(map(len, pairs[r])))
        bar = progress_bar(len(order), f"token scores (layer {layer})", "reply")
        try:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                hidden = self._forward([pairs[r][0] + pairs[r][1] for r in chunk], layer)
                for n, row in enumerate(chunk):
                    prompt, reply = pairs[row]
                    yield row, hidden[n][len(prompt):len(prompt) + len(reply)]
                bar.update(len(chunk))
        finally:
            bar.close()

    def _forward(self, sequences: list[list[int]], layer: int) -> list[np.ndarray]:
        """Per sequence, ``[seq, d_model]`` float32: block ``layer``'s output (`Model.run_with_cache`,
        right padding, one batch; the pass stops once block ``layer`` has run)."""
        cache = self.model.run_with_cache(sequences, layers=[layer], batch_size=len(sequences))
        return [np.asarray(states.numpy(), dtype=np.float32) for states in cache.rows(layer)]


class LazyReplyStates(ReplyTokenStates):
    """A `TeacherForcedReplyStates` whose model is loaded (by ``load``) only when tokens are asked for:
    a dataset that stored ``reply_all`` never loads it."""

    def __init__(self, load: Callable[[], Model], batch_size: int = 8) -> None:
        self.load, self.batch_size = load, batch_size
        self.inner: TeacherForcedReplyStates | None = None

    def states(self, dataset: Dataset, layer: int, rows: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        if self.inner is None:
            self.inner = TeacherForcedReplyStates(self.load(), self.batch_size)
        return self.inner.states(dataset, layer, rows)


def run_model_loader(run_dir: Path, dataset: Dataset) -> Callable[[], Model]:
    """A loader of the model that wrote ``run_dir`` (its recorded id, revision, device and dtype).

    Everything that can be checked without loading is checked now (exit 2): a model recorded, its
    id readable, the prompt ids stored.
    """

    dataset_dir = resolve_dataset_dir(run_dir)
    config = recorded_run_config(dataset_dir.parent if dataset_dir.name == "dataset" else Path(run_dir), dataset)
    model_id = config.get("model")
    if not model_id:
        raise UsageError(f"{run_dir} records no model (config.json or the dataset's meta); --score-tokens "
                         "needs the model that generated the replies")
    if "prompt_ids/values" not in dataset.arrays:
        raise UsageError(f"{run_dir}: the dataset stores no prompt token ids (written by an older version); "
                         "--score-tokens cannot replay the replies")
    spec = ModelSpec.parse(str(model_id))

    def load() -> Model:
        log.info("token scores: loading %s", model_id)
        return surface.load_model(spec, device=config.get("device") or "auto", dtype=config.get("dtype") or "float32",
                          revision=config.get("revision"))
    return load

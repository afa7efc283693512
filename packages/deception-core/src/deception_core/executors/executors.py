"""Where trials are played: in this process (``--executor local``) or on Ray workers (``--executor ray``).

Both executors take the run's units of work (`deception_core.executors.units.play_units`: trials
played together, so they share batches) and hand every finished `TrialOutput` to the runner's
callback, which writes it through the checkpoint store; the runner then writes one dataset. Both
play a unit with `deception_core.executors.units.play_trials`, so a trial's batches do not depend on
the executor or on the worker that plays it.

The Ray executor starts one actor per worker. Each loads the model once (on its own GPU, or a
CPU with one torch thread) and plays one unit at a time; the driver hands the next unit to
whichever worker is free, so a fast worker takes more. A unit's trials come back as checkpoint
shards (`deception_core.checkpoints.checkpoint.encode_trial`: safetensors with a checksum) that the
driver verifies before it records them. When a worker dies (killed, out of memory, node lost), the
unit it was playing goes back to the front of the queue and a replacement worker is started;
nothing of that unit was recorded, so no trial is lost or recorded twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs

from deception_core.base.errors import UsageError
from deception_core.base.registry import Registry
from deception_core.checkpoints.checkpoint import decode_trial
from deception_core.collect.collect import TrialOutput
from deception_core.config.resolved import ResolvedRun
from deception_core.contracts.capture import CaptureBackend
from deception_core.contracts.scenario import TrialSpec
from deception_core.executors.ray_worker import PlayWorker, WorkerFacts, WorkerSetup
from deception_core.executors.units import play_trials, spec_to_wire
from deception_core.outputs import files as outputs
from deception_core.play.session import ModelFacts, PlaySession, open_session
from deception_core.ui.progress import TrialProgress

if TYPE_CHECKING:
    from deception_core.model.surface import Model
    from deception_core.plugins import PluginSet

log = logging.getLogger("deception")

RAY_PIN = "ray==2.60.0"
RAY_INSTALL = f"pip install 'deception-core[ray]' (or: pip install {RAY_PIN})"

OnDone = Callable[[TrialOutput], None]


def require_ray() -> ModuleType:
    """The ``ray`` module, or a `UsageError` (exit 2) that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed. Install it with: {RAY_INSTALL}") from None
    return ray


class Executor:
    """Plays trials somewhere and reports each finished one."""

    def start(self) -> Model | ModelFacts:
        """Get ready to play; return the model (or `ModelFacts` about it) for the run's records."""
        raise NotImplementedError

    def play(self, units: Iterable[list[TrialSpec]], done: AbstractSet[str], on_done: OnDone, *, total: int) -> None:
        """Play every unit (`deception_core.executors.units.play_units`); call ``on_done(output)`` once
        per trial not in ``done``, as it finishes."""
        raise NotImplementedError

    @property
    def batch_size(self) -> int:
        """Generation calls per batch, known once `start` has returned (the units are cut with it)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Release workers (called even when `play` fails or is interrupted)."""

    def session(self, *, load: bool) -> PlaySession | None:
        """The model in this process (the causal tests need it); loaded now if ``load`` and not here yet."""
        raise NotImplementedError


class LocalExecutor(Executor):
    """Everything in this process, on the model it loads once."""

    def __init__(self, run: ResolvedRun, registry: Registry, load_model: Callable[[], Model]) -> None:
        self.run, self.registry, self.load_model = run, registry, load_model
        self._session: PlaySession | None = None
        self.wrap_backend: Callable[[CaptureBackend], CaptureBackend] | None = None

    def _open(self) -> PlaySession:
        if self._session is None:
            self._session = open_session(self.run, self.registry, self.load_model(), wrap_backend=self.wrap_backend)
        return self._session

    def start(self) -> Model:
        return self._open().model

    @property
    def batch_size(self) -> int:
        return self._open().batch_size

    def play(self, units: Iterable[list[TrialSpec]], done: AbstractSet[str], on_done: OnDone, *, total: int) -> None:
        session = self._open()
        progress = TrialProgress(total, len(done), 4 * session.config.max_rounds)
        try:
            for unit in units:
                progress.start_wave(sum(spec.key not in done for spec in unit))
                for output in play_trials(unit, session, skip=done,
                                          on_batch=lambda calls, _tokens: progress.calls_done(calls)):
                    on_done(output)
                    progress.trial_done(len(output.trial.calls))
        finally:
            progress.close()

    def session(self, *, load: bool) -> PlaySession | None:
        return self._open() if (load or self._session is not None) else None


# -- Ray -------------------------------------------------------------------------------------------


def _fresh(units: Sequence[list[TrialSpec]], done: AbstractSet[str]) -> int:
    return sum(spec.key not in done for unit in units for spec in unit)


#: environment variables that choose plugins; a worker on another machine needs the driver's values
PLUGIN_ENV = ("DECEPTION_EXTRA_PLUGINS", "DECEPTION_DISABLE_PLUGINS")


@attrs.define
class _Worker:
    name: str
    handle: Any
    started: float
    ready_at: float | None = None
    trials: int = 0


class WorkerProgress:
    """One bar over all workers: trials done of the total, ETA, and each worker's rate."""

    def __init__(self, total: int, initial: int) -> None:
        self.bar = outputs.progress_bar(total, initial)
        self.total, self.done, self.initial = total, initial, initial
        self.started = time.monotonic()
        self.last_log = self.started

    def update(self, workers: Sequence[_Worker], n: int) -> None:
        self.done += n
        self.bar.update(n)
        self.refresh(workers)

    def rates(self, workers: Sequence[_Worker]) -> dict[str, float]:
        """Trials per minute of each worker since it became ready."""
        now = time.monotonic()
        return {w.name: 60.0 * w.trials / max(now - w.ready_at, 1e-9) for w in workers if w.ready_at is not None}

    def eta_seconds(self) -> float | None:
        played = self.done - self.initial
        if played <= 0:
            return None
        return (time.monotonic() - self.started) / played * (self.total - self.done)

    def line(self, workers: Sequence[_Worker]) -> str:
        rates = " ".join(f"{name} {rate:.1f}/min" for name, rate in self.rates(workers).items())
        eta = self.eta_seconds()
        return f"{self.done}/{self.total} trials; {rates or 'no worker ready yet'}" + (
            f"; ETA {eta:.0f} s" if eta is not None else "")

    def refresh(self, workers: Sequence[_Worker]) -> None:
        if hasattr(self.bar, "set_postfix_str"):
            self.bar.set_postfix_str(" ".join(f"{n} {r:.1f}/min" for n, r in self.rates(workers).items()))
        now = time.monotonic()
        if now - self.last_log >= 30.0:  # the log file gets the same picture now and then
            self.last_log = now
            log.info("progress: %s", self.line(workers))

    def close(self) -> None:
        self.bar.close()


class RayExecutor(Executor):
    """Trials spread over Ray actors, one model copy per actor."""

    #: replacement workers started over the run, per worker asked for, before the run gives up
    REPLACEMENTS_PER_WORKER = 2

    def __init__(self, run: ResolvedRun, registry: Registry, load_model: Callable[[], Model]) -> None:
        self.run = run
        self.config = run.config
        self.local = LocalExecutor(run, registry, load_model)  # causal tests only
        self.ray = require_ray()
        self._started_ray = False
        self._workers: dict[str, _Worker] = {}
        self._count = 0
        self._replacements = 0
        self._setup: WorkerSetup | None = None  # set by `start`, before the first worker is launched
        self._options: dict[str, int] = {}
        self._facts: WorkerFacts | None = None  # the first ready worker's
        self._waiting: dict[object, _Worker] = {}  # ready() refs of workers still loading the model
        self._idle: deque[_Worker] = deque()
        self._batch_size = 1

    # set-up -------------------------------------------------------------------------------------

    def _init_ray(self) -> None:
        ray, config = self.ray, self.config
        if ray.is_initialized():  # a caller (a notebook, a test) already connected
            return
        env = {k: os.environ[k] for k in PLUGIN_ENV if k in os.environ}
        quiet = {"include_dashboard": False, "log_to_driver": config.verbose, "logging_level": logging.WARNING}
        if config.ray_address:
            log.info("connecting to the Ray cluster at %s", config.ray_address)
            try:
                ray.init(address=config.ray_address, runtime_env={"env_vars": env} if env else None, **quiet)
            except (ConnectionError, TimeoutError, RuntimeError, ValueError) as error:
                first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
                raise UsageError(f"--ray-address {config.ray_address}: Ray could not join the cluster there "
                                 f"({type(error).__name__}: {first}); check the address `ray start --head` "
                                 "printed, or leave --ray-address out to start a local Ray instance") from None
        else:
            cpus = max(os.cpu_count() or 1, config.workers or 1)
            log.info("starting a local Ray instance (%d CPU slot(s), node address 127.0.0.1)", cpus)
            ray.init(num_cpus=cpus, _node_ip_address="127.0.0.1", **quiet)
            self._started_ray = True

    def _plan_workers(self) -> tuple[int, bool]:
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        use_gpu = self.config.device in ("auto", "cuda") and gpus > 0
        if self.config.device == "cuda" and not use_gpu:
            raise UsageError("--device cuda with --executor ray, but the Ray cluster has no GPU; "
                             "use --device cpu or add GPU nodes")
        count = self.config.workers or (gpus if use_gpu else 1)
        return count, use_gpu

    def _launch(self) -> None:
        self._count += 1
        name = f"w{self._count - 1}"
        actor_cls = self.ray.remote(PlayWorker).options(max_restarts=0, max_task_retries=0, **self._options)
        handle = actor_cls.remote(self._setup)
        worker = _Worker(name, handle, time.monotonic())
        self._workers[name] = worker
        self._waiting[handle.ready.remote()] = worker

    def start(self) -> ModelFacts:
        self._init_ray()
        count, use_gpu = self._plan_workers()
        self._setup = WorkerSetup(run=self.run.to_wire(), threads=1)
        self._options = {"num_gpus": 1, "num_cpus": 1} if use_gpu else {"num_gpus": 0, "num_cpus": 1}
        log.info("starting %d Ray worker(s) on %s", count, "one GPU each" if use_gpu else "one CPU each")
        for _ in range(count):
            self._launch()
        self._wanted = count
        while not self._idle:  # the run's records need the model facts of one ready worker
            if not self._waiting:
                raise RuntimeError("no Ray worker could load the model; see the errors above and the Ray logs")
            self._wait_for_workers(timeout=None)
        facts = self._facts
        assert facts is not None, "a worker is idle only once it reported its facts"
        self._batch_size = int(facts["batch_size"])  # every worker plays with the first ready one's size
        return ModelFacts(facts["device"], facts["dtype"], facts["description"])

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def _wait_for_workers(self, timeout: float | None) -> None:
        ready, _ = self.ray.wait(list(self._waiting), num_returns=1, timeout=timeout)
        for ref in ready:
            self._worker_ready(ref)

    def _worker_ready(self, ref: object) -> None:
        worker = self._waiting.pop(ref)
        try:
            self._facts = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as error:
            self._lost(worker, error, unit=None)
            return
        worker.ready_at = time.monotonic()
        log.info("Ray worker %s ready after %.1f s on %s", worker.name, worker.ready_at - worker.started,
                 self._facts["device"])
        self._idle.append(worker)

    def _lost(self, worker: _Worker, error: BaseException, unit: list[TrialSpec] | None) -> None:
        """A worker died: forget it, start a replacement while the budget lasts."""
        self._workers.pop(worker.name, None)
        with contextlib.suppress(Exception):  # already gone
            self.ray.kill(worker.handle)
        what = f"its {len(unit)} unfinished trial(s) go back to the queue" if unit else "it had no trials"
        log.warning("Ray worker %s died (%s: %s); %s", worker.name, type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "", what)
        if self._replacements < self.REPLACEMENTS_PER_WORKER * self._wanted:
            self._replacements += 1
            self._launch()
            log.warning("started replacement worker w%d", self._count - 1)

    # playing ------------------------------------------------------------------------------------

    def play(self, units: Iterable[list[TrialSpec]], done: AbstractSet[str], on_done: OnDone, *, total: int) -> None:
        ray = self.ray
        died = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OutOfMemoryError, ray.exceptions.ObjectLostError)
        queue: deque[list[TrialSpec]] = deque(units)
        busy: dict[object, tuple[_Worker, list[TrialSpec]]] = {}
        recorded: set[str] = set()
        units = list(units)
        progress = WorkerProgress(total, total - _fresh(units, done))
        try:
            while queue or busy:
                while self._idle and queue:
                    worker, unit = self._idle.popleft(), queue.popleft()
                    skip = sorted(s.key for s in unit if s.key in done)
                    call = worker.handle.play.remote([spec_to_wire(s) for s in unit], skip, self._batch_size)
                    busy[call] = (worker, unit)
                if not busy and not self._waiting:
                    raise RuntimeError(
                        f"every Ray worker died and the replacement budget is spent; {len(queue)} unit(s) of "
                        "trials are left. Finished trials are in the checkpoint (with --checkpoint-dir): fix the "
                        "cause (see the warnings above) and run the same command again to resume")
                ready, _ = ray.wait([*busy, *self._waiting], num_returns=1, timeout=2.0)
                for ref in ready:
                    if ref in self._waiting:
                        self._worker_ready(ref)
                        continue
                    worker, unit = busy.pop(ref)
                    try:
                        shards = ray.get(ref)
                    except died as error:
                        queue.appendleft(unit)  # played again, whole, by the next free worker
                        self._lost(worker, error, unit)
                        continue
                    wanted = [spec.key for spec in unit if spec.key not in done]
                    if [key for key, _ in shards] != wanted:
                        raise RuntimeError(f"worker {worker.name} returned trials {[k for k, _ in shards]}, "
                                           f"expected {wanted}")
                    for key, data in shards:
                        if key in recorded:  # cannot happen with one result per unit; guard anyway
                            log.warning("trial %s came back twice; the second copy is ignored", key)
                            continue
                        on_done(decode_trial(data, expected_key=key))
                        recorded.add(key)
                    worker.trials += len(shards)
                    self._idle.append(worker)
                    progress.update(list(self._workers.values()), len(shards))
                progress.refresh(list(self._workers.values()))
        finally:
            progress.close()
        rates = progress.rates(list(self._workers.values()))
        log.info("Ray workers: %s", "; ".join(
            f"{name} {w.trials} trial(s), {rates.get(name, 0.0):.1f}/min" for name, w in self._workers.items()))

    def stop(self) -> None:
        for worker in list(self._workers.values()):
            with contextlib.suppress(Exception):  # already gone
                self.ray.kill(worker.handle)
        self._workers.clear()
        self._waiting.clear()
        self._idle.clear()
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False

    def session(self, *, load: bool) -> PlaySession | None:
        return self.local.session(load=load)


def make_executor(run: ResolvedRun, plugins: PluginSet, load_model: Callable[[], Model], *,
                  wrap_backend: Callable[[CaptureBackend], CaptureBackend] | None = None) -> Executor:
    """The run's executor; ``wrap_backend`` (local runs only) wraps the capture backend, as the pipeline
    benchmark does to count calls."""
    if run.config.executor == "ray":
        return RayExecutor(run, plugins.registry, load_model)
    executor = LocalExecutor(run, plugins.registry, load_model)
    executor.wrap_backend = wrap_backend
    return executor

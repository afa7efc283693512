"""`InterpretabilityRunner`: a `RunConfig` in, a `RunResults` out.

The order matters: everything that can be checked without a model is checked first (so bad input
costs nothing and leaves no output directory), then the model is loaded once, trials are played
in batches, every focal utterance is labelled by the scenario's rule and the evaluator, and the
dataset is written once at the end. Analyses and causal tests run on the stored dataset.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deception_core.analyse.analyse import chosen_alternatives, chosen_direction, run_analyses
from deception_core.base.errors import EngineFailed
from deception_core.base.records import AnalysisReport
from deception_core.base.registry import Kind
from deception_core.base.types import JSONObject
from deception_core.capture.reply_states import REPLY_STATES_OPTION, TeacherForcedReplyStates
from deception_core.checkpoints.checkpoint import CheckpointStore, TrialSink, checkpoint_sink, claimed_groups
from deception_core.collect.collect import TrialOutput, assemble_arrays
from deception_core.config.resolved import Placement, ResolvedRun
from deception_core.config.run import RunConfig
from deception_core.contracts.analysis import CausalContext
from deception_core.contracts.capture import CaptureBackend
from deception_core.contracts.evaluator import EvaluatorContext
from deception_core.contracts.scenario import TrialSpec
from deception_core.executors.executors import Executor, make_executor
from deception_core.executors.units import play_units
from deception_core.intervene.causal import run_causal_tests
from deception_core.model import surface  # the module: tests replace its load_model
from deception_core.model.device import resolve_device, resolve_dtype
from deception_core.outputs import files as outputs
from deception_core.outputs import policy as output_policy
from deception_core.pipeline import run_files
from deception_core.pipeline.merge import canonical_order
from deception_core.pipeline.validate import ValidatedRun, validate
from deception_core.plan.plan import plan_trials
from deception_core.play.batching import wave_size, waves
from deception_core.play.session import ModelFacts, PlaySession, build_counterpart, build_engine, judge_builder
from deception_core.plugins import PluginSet, get_plugin_set
from deception_core.report import write_report
from deception_core.sae.encode import encode_dataset_arrays, load_sae
from deception_core.store.dataset import Dataset, atomic_write_text, write_dataset

if TYPE_CHECKING:
    from sae_lens import SAE

    from deception_core.model.surface import Model

log = logging.getLogger("deception")


@attrs.define(repr=False)
class RunResults:
    """What a run produced. ``dataset`` is in memory; ``output_dir`` holds the files."""

    output_dir: Path
    dataset: Dataset
    analyses: dict[str, AnalysisReport]  # by analysis name
    causal: dict[str, JSONObject]  # causal test name -> its JSON-ready record
    summary: str
    wall_seconds: float
    dataset_bytes: int = 0
    stage_seconds: dict[str, float] = attrs.field(factory=dict)  # "play", and "causal" when it ran

    def __repr__(self) -> str:
        return (f"<RunResults {self.output_dir}: {len(self.dataset)} samples, analyses {sorted(self.analyses)}, "
                f"causal {sorted(self.causal)}, {self.wall_seconds:.1f} s>")


@attrs.define
class _Started:
    """A run once its model is loaded: the resolved run with its placement, and the trials so far."""

    resolved: ResolvedRun
    executor: Executor
    model: Model | ModelFacts
    meta: JSONObject
    specs: list[TrialSpec]
    done: dict[str, TrialOutput]


@attrs.define
class _Prepared:
    judge: JSONObject  # the judge as recorded (`Evaluator.describe`)
    sae: SAE | None


class InterpretabilityRunner:
    """Run the deception pipeline from Python.

    >>> from deception_core import InterpretabilityRunner, RunConfig
    >>> results = InterpretabilityRunner(RunConfig(model="embedded:gemma-3-270m", trials=2)).run()  # doctest: +SKIP
    """

    def __init__(self, config: RunConfig, *, plugins: PluginSet | None = None, model: Model | None = None,
                 trial_sink: TrialSink | None = None,
                 wrap_backend: Callable[[CaptureBackend], CaptureBackend] | None = None) -> None:
        self.config = config
        self.wrap_backend = wrap_backend  # backend -> backend (the pipeline benchmark records calls)
        self.plugins = plugins or get_plugin_set()
        self._model = model
        self.trial_sink: TrialSink | None = trial_sink if trial_sink is not None else checkpoint_sink(config)
        self._default_checkpoint = self.trial_sink is None  # <output>/checkpoint, removed once the dataset exists
        if self._default_checkpoint:
            self.trial_sink = CheckpointStore(output_policy.checkpoint_dir(config))

    def validate(self) -> ValidatedRun:
        return validate(self.config, self.plugins)

    def run(self) -> RunResults:
        started = time.time()
        checked = self.validate()
        config = checked.config
        prepared = self._prepare(checked)  # remote checks (API keys, SAE files) before anything is written
        out_dir = Path(config.output)
        with output_policy.OutputClaim(out_dir, "run"):  # another process writing here: exit 2, nothing touched
            state = output_policy.check_output(config, inputs=output_policy.run_inputs(config, checked.model_spec))
            return self._run_claimed(checked, prepared, out_dir, state, started)

    def _run_claimed(self, checked: ValidatedRun, prepared: _Prepared, out_dir: Path, state: str,
                     started: float) -> RunResults:
        """The run, once this process holds the output folder and has checked it again under the claim."""
        if state == "overwrite":
            log.warning("--overwrite: deleting the earlier run in %s", out_dir)
            output_policy.clear_for_overwrite(out_dir)
        if state == "resume":
            for leftover in output_policy.remove_dead_staging(out_dir):
                log.info("removed %s, left by an interrupted run", leftover)
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = run_files.setup_logging(out_dir, checked.config.verbose)
        try:
            if output_policy.read_marker(out_dir) is None:  # what --overwrite may delete later
                output_policy.write_marker(out_dir, "run")
            return self._run(checked, prepared, out_dir, started)
        except BaseException as error:
            if created and not self._kept_trials():  # nothing worth keeping: leave nothing behind
                shutil.rmtree(out_dir, ignore_errors=True)
            if isinstance(error, OSError) and output_policy.is_write_error(error):
                raise self._write_failed(error) from None
            if isinstance(error, EngineFailed):
                raise self._engine_failed(error) from None
            raise
        finally:
            logging.getLogger("deception").removeHandler(handler)
            handler.close()

    def _kept_trials(self) -> int:
        sink = self.trial_sink
        return int(getattr(sink, "saved", 0) or 0) + int(getattr(sink, "resumed", 0) or 0)

    def _write_failed(self, error: OSError) -> output_policy.WriteFailed:
        kept = self._kept_trials()
        where = getattr(self.trial_sink, "directory", None)
        saved = (f"the {kept} finished trial(s) are kept in {where}; re-run the same command to resume"
                 if kept and where is not None else "no finished trial was kept")
        message = f"{output_policy.describe_os_error(error)}. The run stopped: {saved}"
        log.error(message)
        return output_policy.WriteFailed(message)

    def _engine_failed(self, error: EngineFailed) -> EngineFailed:
        kept = self._kept_trials()
        where = getattr(self.trial_sink, "directory", None)
        saved = (f"the {kept} finished trial(s) are kept in {where}; once the engine answers again, re-run the "
                 "same command to resume" if kept and where is not None else "no finished trial was kept")
        message = f"the generation engine failed: {error}. The run stopped: {saved}"
        log.error(message)
        return EngineFailed(message)

    def _load_model(self, checked: ValidatedRun) -> Model:
        if self._model is not None:
            return self._model

        device = resolve_device(self.config.device)
        dtype = resolve_dtype(self.config.dtype, device)
        return surface.load_model(checked.model_spec, device=device, dtype=dtype, revision=self.config.revision)

    def _prepare(self, checked: ValidatedRun) -> _Prepared:
        """Check the judge's key (and load the SAE) before the model and before any output exists; the
        judge that labels trials is built later on the backend (`deception_core.play.session`)."""
        evaluator = judge_builder(self.plugins.registry, checked.run)(EvaluatorContext())
        evaluator.preflight()  # a rejected API key fails here
        servers = [build_engine(checked.run, self.plugins.registry, tokenizer=None), build_counterpart(checked.run)]
        for server in servers:  # a server that does not answer fails here (exit 2), before any output exists
            if server is not None:
                try:
                    server.preflight()
                finally:
                    server.close()
        sae = None
        if checked.sae is not None:  # an unreadable SAE fails here
            sae = load_sae(checked.sae)
        return _Prepared(evaluator.describe(), sae)

    def _run(self, checked: ValidatedRun, prepared: _Prepared, out_dir: Path, started: float) -> RunResults:
        log.info("deception run: model %s, scenarios %s, modes %s, %d trial(s) per condition",
                 checked.config.model, ",".join(checked.run.scenarios), ",".join(checked.config.modes),
                 checked.config.trials)
        self.plugins.manager.hook.before_run(config=checked.config)
        run = self._start(checked, prepared, out_dir)
        stage = time.monotonic()
        self._play(run)
        stages = {"play": time.monotonic() - stage}
        log.info("play stage: %.1f s", stages["play"])
        dataset, size = self._write_dataset(run, checked, prepared, out_dir)
        config = run.resolved.config
        session = run.executor.session(load=config.causal)  # the causal tests need the model in this process
        analyses = self._analyse(dataset, out_dir, session, run.resolved.batch_size) if config.analyze else {}
        stage = time.monotonic()
        causal = self._causal(session, dataset, analyses, out_dir, run.resolved) if session is not None else {}
        if causal:
            stages["causal"] = time.monotonic() - stage
            log.info("causal stage: %.1f s", stages["causal"])
        summary = run_files.summary_text(dataset, analyses, causal, size)
        atomic_write_text(out_dir / "summary.txt", summary)
        if session is not None:
            session.backend.close()
            if session.counterpart is not None:
                session.counterpart.close()
        if config.report:
            log.info("report: %s", write_report(out_dir, tokenizer=getattr(run.model, "tokenizer", None)))
        results = RunResults(out_dir, dataset, analyses, causal, summary, time.time() - started, size, stages)
        self.plugins.manager.hook.after_run(config=config, results=results)
        if self.trial_sink is not None:
            self.trial_sink.finish()
        return results

    def _start(self, checked: ValidatedRun, prepared: _Prepared, out_dir: Path) -> _Started:
        """Load the model (in this process or the workers), write the run's header and resume what
        the checkpoint holds."""
        specs = plan_trials(checked.config, list(checked.run.scenarios))
        executor = make_executor(checked.run, self.plugins, lambda: self._load_model(checked),
                                 wrap_backend=self.wrap_backend)
        model = executor.start()  # the model, or (Ray) the facts about the model the workers loaded
        run = checked.run.placed(Placement(device=str(model.device), dtype=str(model.dtype),
                                           batch_size=executor.batch_size))
        log.info("batches of up to %d generation calls, %d trials in flight (--batch-size %s)",
                 run.batch_size, wave_size(run.batch_size), run.config.batch_size)
        meta = run_files.dataset_meta(run, model, self.plugins)
        meta["judge"] = prepared.judge
        run_files.write_run_header(out_dir, run, model, self.plugins, judge=prepared.judge)
        done: dict[str, TrialOutput] = {}
        if self.trial_sink is not None:
            done.update(self.trial_sink.start(run, meta, specs))
        return _Started(run, executor, model, meta, specs, done)

    def _units(self, run: _Started) -> Iterable[list[TrialSpec]]:
        """The units still to play; processes sharing the checkpoint folder claim whole waves, so none
        plays a trial twice."""
        specs, done, batch_size = run.specs, run.done, run.resolved.batch_size
        if not (run.resolved.config.executor == "local" and hasattr(self.trial_sink, "claim")):
            return play_units(specs, set(done), batch_size)

        def open_waves(_pending: list[TrialSpec]) -> list[list[TrialSpec]]:
            return [w for w in waves(specs, batch_size) if any(spec.key not in done for spec in w)]

        return claimed_groups(self.trial_sink, [s for s in specs if s.key not in done], done, open_waves,
                              done.update)

    def _play(self, run: _Started) -> None:
        """Play every unfinished trial; each finished one goes into ``run.done`` and the checkpoint."""
        def finished(output: TrialOutput) -> None:
            run.done[output.key] = output
            log.debug("trial %s done: %d sample(s), labels %s", output.key, len(output.samples),
                      [s.label for s in output.samples])
            if self.trial_sink is not None:
                self.trial_sink.add(output)

        try:
            run.executor.play(self._units(run), run.done.keys(), finished, total=len(run.specs))
        finally:
            run.executor.stop()
            if self.trial_sink is not None and hasattr(self.trial_sink, "close"):
                self.trial_sink.close()  # claims of trials not played are given back

    def _write_dataset(self, run: _Started, checked: ValidatedRun, prepared: _Prepared,
                       out_dir: Path) -> tuple[Dataset, int]:
        """The dataset of every trial in canonical order (SAE codes added with --sae), written once; its size."""
        config, meta = run.resolved.config, run.meta
        ordered = [run.done[key] for key in canonical_order(s.key for s in run.specs)]
        samples, arrays = assemble_arrays(ordered, run.resolved.layers, run.resolved.positions)
        if prepared.sae is not None and checked.sae is not None:
            meta["sae"] = encode_dataset_arrays(prepared.sae, checked.sae, samples, arrays,
                                                [p.value for p in config.positions if p.value != "reply_all"])
        dataset = Dataset(meta, samples, [o.trial for o in ordered], arrays)
        write_dataset(out_dir / "dataset", dataset)
        if self._default_checkpoint:  # the dataset holds every trial now
            shutil.rmtree(output_policy.checkpoint_dir(config), ignore_errors=True)
        outputs.write_torch_export(out_dir, config.mode, dataset)
        size = outputs.directory_size(out_dir / "dataset")
        log.info("dataset: %d samples from %d trials, %.1f MB", len(samples), len(ordered), size / 1e6)
        return dataset, size

    def _analyse(self, dataset: Dataset, out_dir: Path, session: PlaySession | None,
                 batch_size: int) -> dict[str, AnalysisReport]:
        """The analyses; where the model is in this process, they may score every reply token with it
        (`deception_core.capture.reply_states`); a Ray driver without ``--causal`` holds no model."""

        registry = self.plugins.registry
        options: dict[str, Any] = {"seed": self.config.seed, "jobs": self.config.jobs}
        if session is not None:
            options[REPLY_STATES_OPTION] = TeacherForcedReplyStates(session.model, batch_size)
        else:
            log.info("token scores: the model is not loaded in this process (--executor ray); "
                     "`deception analyze RUN --score-tokens` adds them")
        return run_analyses(registry, dataset, out_dir, options, self.config.components.get(Kind.ANALYSIS.value))

    def _causal(self, session: PlaySession, dataset: Dataset, analyses: dict[str, AnalysisReport], out_dir: Path,
                run: ResolvedRun) -> dict[str, JSONObject]:
        if not run.config.causal:
            return {}

        context = CausalContext(session.model, session.backend, dataset, chosen_direction(analyses), run.config,
                                session.scenarios, session.evaluator, out_dir, session.sampling,
                                alternatives=chosen_alternatives(analyses), run=run)
        return {name: result.record for name, result in run_causal_tests(self.plugins.registry, context, out_dir).items()}



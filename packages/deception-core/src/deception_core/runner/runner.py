"""`InterpretabilityRunner`: a `RunConfig` in, a `RunResults` out.

The order matters: everything that can be checked without a model is checked first (so bad input
costs nothing and leaves no output directory), then the model is loaded once, trials are played
in batches, every focal utterance is labelled by the scenario's rule and the evaluator, and the
dataset is written once at the end. Analyses and causal tests run on the stored dataset.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

import attrs

from deception_core.config import RunConfig
from deception_core.dataset.merge import canonical_order
from deception_core.dataset.store import Dataset, atomic_write_text, write_dataset
from deception_core.evaluator import EvaluatorContext
from deception_core.plugins import PluginSet, get_plugin_set
from deception_core.progress import TrialProgress, progress_bar
from deception_core.registry import Kind
from deception_core.runner import output_policy, outputs
from deception_core.runner.batching import resolve_batch_size, wave_size, waves
from deception_core.runner.checkpoint import CheckpointStore, checkpoint_sink, claimed_groups
from deception_core.runner.collect import TrialOutput, assemble_arrays, collect_trial
from deception_core.runner.judging import judge_wave
from deception_core.runner.plan import plan_trials
from deception_core.runner.play import PlayedTrial, choice_scorer, play_batch, text_generator
from deception_core.runner.validate import ValidatedRun, validate
from deception_core.scenario import GameOptions, TrialSpec

log = logging.getLogger("deception")


@attrs.define(repr=False)
class RunResults:
    """What a run produced. ``dataset`` is in memory; ``output_dir`` holds the files."""

    output_dir: Path
    dataset: Dataset
    analyses: dict[str, Any]
    causal: dict[str, Any]
    summary: str
    wall_seconds: float
    dataset_bytes: int = 0

    def __repr__(self) -> str:
        return (f"<RunResults {self.output_dir}: {len(self.dataset)} samples, analyses {sorted(self.analyses)}, "
                f"causal {sorted(self.causal)}, {self.wall_seconds:.1f} s>")


@attrs.define
class _Prepared:
    evaluator: Any
    generator: dict[str, Any]
    sae: Any


class InterpretabilityRunner:
    """Run the deception pipeline from Python.

    >>> from deception_core import InterpretabilityRunner, RunConfig
    >>> results = InterpretabilityRunner(RunConfig(model="embedded:gemma-3-270m", trials=2)).run()  # doctest: +SKIP
    """

    def __init__(self, config: RunConfig, *, plugins: PluginSet | None = None, model: Any = None,
                 trial_sink: Any = None, wrap_backend: Any = None) -> None:
        self.config = config
        self.wrap_backend = wrap_backend  # backend -> backend (the pipeline benchmark records calls)
        self.plugins = plugins or get_plugin_set()
        self._model = model
        self.trial_sink = trial_sink if trial_sink is not None else checkpoint_sink(config)
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
        if checked.output_state == "overwrite":
            log.warning("--overwrite: deleting the earlier run in %s", out_dir)
            output_policy.clear_for_overwrite(out_dir)
        if checked.output_state == "resume":
            for leftover in output_policy.remove_dead_staging(out_dir):
                log.info("removed %s, left by an interrupted run", leftover)
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = outputs.setup_logging(out_dir, config.verbose)
        try:
            return self._run(checked, prepared, out_dir, started)
        except BaseException as error:
            if created and not self._kept_trials():  # nothing worth keeping: leave nothing behind
                shutil.rmtree(out_dir, ignore_errors=True)
            if isinstance(error, OSError) and output_policy.is_write_error(error):
                raise self._write_failed(error) from None
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

    def _load_model(self, checked: ValidatedRun):
        if self._model is not None:
            return self._model
        from deception_core.models.device import resolve_device, resolve_dtype
        from deception_core.models.loading import load_model

        device = resolve_device(self.config.device)
        dtype = resolve_dtype(self.config.dtype, device)
        return load_model(checked.model_spec, device=device, dtype=dtype, revision=self.config.revision)

    def _prepare(self, checked: ValidatedRun) -> _Prepared:
        """Build the judge (and load the SAE) before the model and before any output exists."""
        registry = self.plugins.registry
        generator: dict[str, Any] = {}  # filled once the backend exists
        evaluator_cls = registry.get(Kind.EVALUATOR, checked.config.evaluator).load()
        evaluator = evaluator_cls(EvaluatorContext(
            generate_text=lambda convs, n: generator["fn"](convs, n),
            score_choices=lambda convs, choices: generator["score"](convs, choices),
        ))
        evaluator.preflight()  # a rejected API key fails here
        sae = None
        if checked.sae is not None:  # an unreadable SAE fails here
            from deception_core.sae.encode import load_sae

            sae = load_sae(checked.sae)
        return _Prepared(evaluator, generator, sae)

    def _run(self, checked: ValidatedRun, prepared: _Prepared, out_dir: Path, started: float) -> RunResults:
        config, registry = checked.config, self.plugins.registry
        log.info("deception run: model %s, scenarios %s, modes %s, %d trial(s) per condition",
                 config.model, ",".join(checked.scenarios), ",".join(config.modes), config.trials)
        self.plugins.manager.hook.before_run(config=config)
        specs = plan_trials(config, list(checked.scenarios))
        scenarios = {name: registry.get(Kind.SCENARIO, name).load()() for name in checked.scenarios}
        evaluator, generator, sae = prepared.evaluator, prepared.generator, prepared.sae
        model = self._load_model(checked)
        from deception_core.capture.base import CaptureSpec, Sampling

        backend_cls = registry.get(Kind.CAPTURE_BACKEND, checked.backend).load()
        backend = backend_cls(model, CaptureSpec(checked.layers, config.positions))
        if self.wrap_backend is not None:
            backend = self.wrap_backend(backend)
        batch_size = resolve_batch_size(config.batch_size, model, config.max_tokens)
        log.info("batches of up to %d generation calls, %d trials in flight (--batch-size %s)",
                 batch_size, wave_size(batch_size), config.batch_size)
        config = attrs.evolve(config, batch_size=batch_size)  # the causal tests read it
        generator["fn"] = text_generator(backend, max(batch_size, 4))
        generator["score"] = choice_scorer(backend, max(batch_size, 4))
        sampling = Sampling(config.temperature, config.top_p)
        options = GameOptions(
            max_rounds=config.max_rounds,
            max_tokens=config.max_tokens,
            theory_of_mind=not (config.fast or config.ultrafast),
            minimal_agents=config.ultrafast,
            self_report=config.self_report,
            chat_template=model.has_chat_template,
        )
        meta = outputs.dataset_meta(config, checked, model, backend_cls, self.plugins)
        outputs.write_run_header(out_dir, config, checked, model, self.plugins)
        done: dict[str, TrialOutput] = {}
        if self.trial_sink is not None:
            done.update(self.trial_sink.start(config, checked, meta, specs))
        todo = [s for s in specs if s.key not in done]
        progress = TrialProgress(len(specs), len(specs) - len(todo), 4 * config.max_rounds)

        def arrived(outputs_: dict[str, TrialOutput]) -> None:  # trials another process sharing the checkpoint played
            done.update(outputs_)
            progress.start_wave(len(outputs_))
            for _ in outputs_:
                progress.trial_done(0)

        def open_waves(_pending: list[TrialSpec]) -> list[list[TrialSpec]]:
            return [w for w in waves(specs, batch_size) if any(spec.key not in done for spec in w)]

        try:
            for wave in claimed_groups(self.trial_sink, todo, done, open_waves, arrived):
                if all(spec.key in done for spec in wave):
                    continue
                # a wave is replayed whole (even trials a checkpoint already holds) so that every
                # call meets the same batch partners as in an uninterrupted run
                played = []
                for spec in wave:
                    scenario = scenarios[spec.scenario]
                    facts = scenario.sample_facts(random.Random(spec.seed))
                    played.append(PlayedTrial(spec, facts, scenario.new_game(spec, facts, options)))
                fresh = [trial.spec.key not in done for trial in played]
                progress.start_wave(sum(fresh))
                play_batch(played, backend, sampling, batch_size,
                           on_batch=lambda calls, _tokens: progress.calls_done(calls))
                new_trials = [trial for trial, new in zip(played, fresh) if new]
                judged = judge_wave(evaluator, new_trials, scenarios, 4 * max(batch_size, 4)) \
                    if evaluator is not None else None
                for trial in new_trials:
                    output = collect_trial(trial, scenarios[trial.spec.scenario], judged,
                                           model.tokenizer, config.label_policy)
                    done[output.key] = output
                    log.debug("trial %s done: %d sample(s), labels %s", output.key, len(output.samples),
                              [s["label"] for s in output.samples])
                    if self.trial_sink is not None:
                        self.trial_sink.add(output)
                    progress.trial_done(len(trial.calls))
        finally:
            progress.close()
            if hasattr(self.trial_sink, "close"):
                self.trial_sink.close()  # claims of trials not played are given back
        ordered = [done[key] for key in canonical_order(s.key for s in specs)]
        samples, arrays = assemble_arrays(ordered, checked.layers, config.positions)
        if sae is not None:
            from deception_core.sae.encode import encode_dataset_arrays

            meta["sae"] = encode_dataset_arrays(sae, checked.sae, samples, arrays,
                                                [p.value for p in config.positions if p.value != "reply_all"])
        dataset = Dataset(meta, samples, [o.trial for o in ordered], arrays)
        write_dataset(out_dir / "dataset", dataset)
        if self._default_checkpoint:  # the dataset holds every trial now
            shutil.rmtree(output_policy.checkpoint_dir(config), ignore_errors=True)
        outputs.write_torch_export(out_dir, config.mode, dataset)
        size = outputs.directory_size(out_dir / "dataset")
        log.info("dataset: %d samples from %d trials, %.1f MB", len(samples), len(ordered), size / 1e6)
        analyses = self._analyse(dataset, out_dir) if config.analyze else {}
        causal = self._causal(model, backend, dataset, analyses, scenarios, evaluator, out_dir, sampling, config)
        summary = outputs.summary_text(dataset, analyses, causal, size)
        atomic_write_text(out_dir / "summary.txt", summary)
        backend.close()
        if config.report:
            from deception_core.report import write_report

            log.info("report: %s", write_report(out_dir, tokenizer=model.tokenizer))
        results = RunResults(out_dir, dataset, analyses, causal, summary, time.time() - started, size)
        self.plugins.manager.hook.after_run(config=config, results=results)
        if self.trial_sink is not None:
            self.trial_sink.finish()
        return results

    def _analyse(self, dataset: Dataset, out_dir: Path) -> dict[str, Any]:
        from deception_core.runner.analyse import run_analyses

        return run_analyses(self.plugins.registry, dataset, out_dir, {"seed": self.config.seed})

    def _causal(self, model, backend, dataset, analyses, scenarios, evaluator, out_dir, sampling,
                config: RunConfig) -> dict[str, Any]:
        if not config.causal:
            return {}
        from deception_core.analysis import CausalContext

        probe_results = analyses.get("probes", {}).get("results", {}) if analyses else {}
        context = CausalContext(model, backend, dataset, probe_results, config, scenarios, evaluator,
                                out_dir, sampling)
        results: dict[str, Any] = {}
        entries = list(self.plugins.registry.entries(Kind.CAUSAL_TEST))
        bar = progress_bar(len(entries), "causal tests", "test")
        for entry in entries:
            log.info("causal test %s", entry.name)
            bar.set_postfix_str(entry.name)
            result = entry.load()().run(context)
            atomic_write_text(out_dir / f"causal_{entry.name}.json", json.dumps(result, indent=2, default=str))
            results[entry.name] = result
            bar.update(1)
        bar.close()
        return results


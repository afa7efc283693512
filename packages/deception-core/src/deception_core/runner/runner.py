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
import time
from pathlib import Path
from typing import Any

import attrs

from deception_core.config import RunConfig
from deception_core.dataset.merge import canonical_order
from deception_core.dataset.store import Dataset, atomic_write_text, write_dataset
from deception_core.evaluator import EvaluatorContext
from deception_core.plugins import PluginSet, get_plugin_set
from deception_core.registry import Kind
from deception_core.runner import outputs
from deception_core.runner.checkpoint import checkpoint_sink, claimed_groups
from deception_core.runner.collect import TrialOutput, assemble_arrays, collect_trial
from deception_core.runner.plan import plan_trials
from deception_core.runner.play import PlayedTrial, choice_scorer, play_batch, text_generator
from deception_core.runner.validate import ValidatedRun, validate
from deception_core.scenario import GameOptions, TrialSpec

log = logging.getLogger("deception")


@attrs.define
class RunResults:
    """What a run produced. ``dataset`` is in memory; ``output_dir`` holds the files."""

    output_dir: Path
    dataset: Dataset
    analyses: dict[str, Any]
    causal: dict[str, Any]
    summary: str
    wall_seconds: float
    dataset_bytes: int = 0


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
                 trial_sink: Any = None) -> None:
        self.config = config
        self.plugins = plugins or get_plugin_set()
        self._model = model
        self.trial_sink = trial_sink if trial_sink is not None else checkpoint_sink(config)

    def validate(self) -> ValidatedRun:
        return validate(self.config, self.plugins)

    def run(self) -> RunResults:
        started = time.time()
        checked = self.validate()
        config = checked.config
        prepared = self._prepare(checked)  # remote checks (API keys, SAE files) before anything is written
        out_dir = Path(config.output)
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = outputs.setup_logging(out_dir, config.verbose)
        try:
            return self._run(checked, prepared, out_dir, started)
        finally:
            logging.getLogger("deception").removeHandler(handler)
            handler.close()

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
        generator["fn"] = text_generator(backend, max(config.batch_size, 4))
        generator["score"] = choice_scorer(backend, max(config.batch_size, 4))
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
        progress = outputs.progress_bar(len(specs), len(specs) - len(todo))

        def arrived(outputs_: dict[str, TrialOutput]) -> None:  # trials another process sharing the checkpoint played
            done.update(outputs_)
            progress.update(len(outputs_))

        try:
            for group in claimed_groups(self.trial_sink, todo, done, lambda s: _groups(s, config.batch_size), arrived):
                played = []
                for spec in group:
                    scenario = scenarios[spec.scenario]
                    facts = scenario.sample_facts(random.Random(spec.seed))
                    played.append(PlayedTrial(spec, facts, scenario.new_game(spec, facts, options)))
                play_batch(played, backend, sampling, config.batch_size)
                for trial in played:
                    output = collect_trial(trial, scenarios[trial.spec.scenario], evaluator,
                                           model.tokenizer, config.label_policy)
                    done[output.key] = output
                    log.debug("trial %s done: %d sample(s), labels %s", output.key, len(output.samples),
                              [s["label"] for s in output.samples])
                    if self.trial_sink is not None:
                        self.trial_sink.add(output)
                    progress.update(1)
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
        outputs.write_torch_export(out_dir, config.mode, dataset)
        size = outputs.directory_size(out_dir / "dataset")
        log.info("dataset: %d samples from %d trials, %.1f MB", len(samples), len(ordered), size / 1e6)
        analyses = self._analyse(dataset, out_dir) if config.analyze else {}
        causal = self._causal(model, backend, dataset, analyses, scenarios, evaluator, out_dir, sampling)
        summary = outputs.summary_text(dataset, analyses, causal, size)
        atomic_write_text(out_dir / "summary.txt", summary)
        backend.close()
        results = RunResults(out_dir, dataset, analyses, causal, summary, time.time() - started, size)
        self.plugins.manager.hook.after_run(config=config, results=results)
        if self.trial_sink is not None:
            self.trial_sink.finish()
        return results

    def _analyse(self, dataset: Dataset, out_dir: Path) -> dict[str, Any]:
        from deception_core.runner.analyse import run_analyses

        return run_analyses(self.plugins.registry, dataset, out_dir, {"seed": self.config.seed})

    def _causal(self, model, backend, dataset, analyses, scenarios, evaluator, out_dir, sampling) -> dict[str, Any]:
        if not self.config.causal:
            return {}
        from deception_core.analysis import CausalContext

        probe_results = analyses.get("probes", {}).get("results", {}) if analyses else {}
        context = CausalContext(model, backend, dataset, probe_results, self.config, scenarios, evaluator,
                                out_dir, sampling)
        results: dict[str, Any] = {}
        for entry in self.plugins.registry.entries(Kind.CAUSAL_TEST):
            log.info("causal test %s", entry.name)
            result = entry.load()().run(context)
            atomic_write_text(out_dir / f"causal_{entry.name}.json", json.dumps(result, indent=2, default=str))
            results[entry.name] = result
        return results


def _groups(specs: list[TrialSpec], size: int) -> list[list[TrialSpec]]:
    """Consecutive trials of one scenario, mode and condition, ``size`` at a time."""
    groups: list[list[TrialSpec]] = []
    for spec in specs:
        last = groups[-1] if groups else None
        same = last and (last[0].scenario, last[0].mode, last[0].condition) == (spec.scenario, spec.mode, spec.condition)
        if same and len(last) < size:
            last.append(spec)
        else:
            groups.append([spec])
    return groups

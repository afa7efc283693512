"""The hooks a `deception` plugin may implement.

A plugin is a module (or object) with functions decorated by `deception_core.hookimpl`, declared
under the entry-point group ``deception`` in its package metadata::

    [project.entry-points.deception]
    my_plugin = "my_package._plugin"

Plugin modules are imported when the plugin manager is first built (for example by
``deception scenarios``), so they must import nothing heavy (torch, transformers,
transformer_lens, sae_lens) at module level. Components are therefore registered as *factories*:
``deception_core.lazy("pkg.module:Class")`` imports the implementation only when a run needs it.

Registration hooks receive a `deception_core.base.registry.KindRegistry` bound to the calling plugin,
so each component records which plugin and distribution provided it. Every hook is called with
keyword arguments; an implementation may accept fewer arguments than the spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from deception_core.base.registry import KindRegistry
    from deception_core.config.plugin_options import RunOptions
    from deception_core.config.run import RunConfig

PROJECT_NAME = "deception"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_scenarios(registry: KindRegistry) -> None:
    """Register negotiation scenarios.

    Called once, when the registry is first built. Add each scenario with
    ``registry.add(name, factory, summary=...)`` where ``factory()`` returns a
    `deception_core.contracts.scenario.Scenario` subclass. Names are global: a name that another plugin
    already registered is refused with an error naming both plugins.

    :param registry: the scenario registry, bound to this plugin.
    :return: nothing (results are collected from every plugin; not firstresult).

    Implemented by: scenario packages (``deception-scenarios``, third-party plugins).
    """


@hookspec
def register_evaluators(registry: KindRegistry) -> None:
    """Register ground-truth evaluators (LLM judges).

    ``factory()`` returns a `deception_core.contracts.evaluator.Evaluator` subclass. The evaluator named by
    ``--evaluator`` labels every focal utterance next to the scenario's rule.

    :param registry: the evaluator registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-scenarios`` (local, together, google) and third parties.
    """


@hookspec
def register_capture_backends(registry: KindRegistry) -> None:
    """Register activation-capture backends.

    ``factory()`` returns a `deception_core.contracts.capture.CaptureBackend` subclass. A backend
    generates the agents' replies and records the residual stream of those very forward passes.

    :param registry: the capture-backend registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-core`` (``hf``, ``transformer-lens``, ``hybrid``) and GPU plugins.
    """


@hookspec
def register_engines(registry: KindRegistry) -> None:
    """Register generation engines, selected with ``--engine NAME --engine-url URL``.

    ``factory()`` returns a `deception_core.contracts.engine.Engine` subclass. An engine other than
    ``hf`` generates the replies outside the toolkit's process (a serving engine); the calls that
    are captured are then replayed through the in-process model in one teacher-forced pass.

    :param registry: the engine registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-core`` (``hf``, ``openai``) and third parties.
    """


@hookspec
def register_causal_tests(registry: KindRegistry) -> None:
    """Register causal tests run by ``--causal``.

    ``factory()`` returns a `deception_core.contracts.analysis.CausalTest` subclass; each writes
    ``causal_<name>.json`` into the output directory. A test that reads other tests' results names
    them in ``requires``: the runner runs those first and passes their results in
    ``CausalContext.results`` (nothing is read back from the output directory).

    :param registry: the causal-test registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-causal`` and third parties.
    """


@hookspec
def register_analyses(registry: KindRegistry) -> None:
    """Register dataset analyses run after a run and by ``deception analyze``.

    ``factory()`` returns a `deception_core.contracts.analysis.Analysis` subclass whose
    ``run(dataset, out_dir, options)`` returns an ``AnalysisReport``. An analysis that chooses a
    linear read-out exposes it as ``AnalysisReport.direction`` (a ``ProbeDirection``); the causal
    tests intervene on the first one, in registration order.

    :param registry: the analysis registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-probes``.
    """


@hookspec
def register_sae_releases(registry: KindRegistry) -> None:
    """Register sparse autoencoders that runs may use with ``--sae``.

    ``factory()`` returns a `deception_core.sae.DirectorySae` or a list of them (release, SAE id,
    model name, layer, hook, width, L0, Neuronpedia id), loadable with ``sae_lens.SAE.from_pretrained``.

    :param registry: the SAE-release registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-core`` (sae-lens's pretrained directory) and third parties.
    """


@hookspec
def register_statement_sets(registry: KindRegistry) -> None:
    """Register statement sets (contrast or control data) that ``deception capture NAME`` records.

    ``factory()`` returns a `deception_core.contracts.statements.StatementSet` subclass whose ``records()``
    gives the records of a ``deception capture`` data file (``text`` or ``messages``, optional
    ``reply``, ``label``, ``group``, ``scenario``, ``condition``). Its parameters come from
    ``deception capture NAME --param KEY=VALUE`` and are structured into its ``settings_class``.

    :param registry: the statement-set registry, bound to this plugin.
    :return: nothing (collect-all, not firstresult).

    Implemented by: ``deception-scenarios`` (``instructed_pairs``) and third parties.
    """


@hookspec(firstresult=True)
def resolve_capture_backend(model_id: str, model_type: str | None, requested: str | None) -> str | None:
    """Claim a model for a capture backend.

    Called before a run when ``--capture-backend`` was not given (``requested`` is then None) and
    also when it was, so a plugin may veto or redirect. Stops at the first non-None result.

    :param model_id: the ``--model`` value as given.
    :param model_type: the HF ``config.model_type`` if known without loading weights.
    :param requested: the backend the user asked for, or None.
    :return: a registered backend name, or None to let the next plugin decide.

    Implemented by: backend plugins; the core's fallback returns ``requested or "hf"``.
    """


@hookspec
def before_run(config: RunConfig) -> None:
    """Observe a run about to start (after validation, before the model loads).

    Observers only: an implementation must not change what the run computes.

    :param config: the run's `deception_core.config.run.RunConfig`, as given (the values the run
        resolved from it are in ``config.json`` and `deception_core.config.resolved.ResolvedRun`).
    """


@hookspec
def after_run(config: RunConfig, results: object) -> None:
    """Observe a finished run (for example to upload artefacts).

    :param config: the run's `deception_core.config.run.RunConfig`, as given.
    :param results: the `deception_core.pipeline.RunResults`.
    """


@hookspec
def register_run_options() -> RunOptions[Any] | list[RunOptions[Any]] | None:
    """Add flags to ``deception run`` that set this plugin's components' settings.

    A plugin owns its settings (each component declares a ``settings_class``; a run carries them
    in ``RunConfig.components``). For short flags on the command line, return a
    `deception_core.config.plugin_options.RunOptions`: a frozen attrs class whose fields, made
    with ``deception_core.config.structuring.option``, become flags of ``deception run`` (listed by
    its ``--help``) and keys a ``--config`` file may hold, plus a function that maps the values the
    user set into ``{kind: {component name: {parameter: value}}}``. Called when ``deception run``
    builds its options and its config; flag names are global (a clash is an error naming both).

    :return: one `RunOptions`, a list of them, or None (collect-all, not firstresult).

    Implemented by: ``deception-core`` (``--sae``, ``--sae-*``), ``deception-scenarios``
    (``--judge-model``, ``--judge-url``), ``deception-causal`` (``--causal-samples``).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add whole commands to the ``deception`` command group.

    Called once, the first time the group lists or looks up its commands. Add commands with
    ``@cli.command()`` or ``cli.add_command(...)``; import anything heavy inside the command, not
    at module level. A command whose name the core or another plugin already uses is skipped with
    a warning naming it; the earlier command stays.

    :param cli: the ``deception`` click group.
    :return: nothing (collect-all, not firstresult).

    Implemented by: third-party plugins that bring their own commands.
    """

"""deception_core: the core of the deception toolkit, and its public API.

Research code and plugins import from here, never from the folders below (an import contract in
pyproject.toml holds the three plugin packages to that)::

    from deception_core import load_model, read_dataset, RunConfig, InterpretabilityRunner

What it exports: the records and enums (`Sample`, `Trial`, `Label`, `Message`, ...), the dataset
(`read_dataset`, `Dataset`), running (`RunConfig`, `InterpretabilityRunner`, `RunResults`), the model
(`load_model`, `Model`, `capture_texts`), the contracts a plugin implements (`Scenario`, `Game`,
`Evaluator`, `CaptureBackend`, `CausalTest`, `Analysis`, `StatementSet`, ...), `hookimpl` with `Kind`
and `lazy` to register them, and the few helpers plugins share (settings, files, progress, SAEs).

Light to import: the names that need numpy, torch or transformers are looked up on first use
(`__getattr__` below), so ``import deception_core`` and the plugins' entry points load none of them.
packages/deception-core/README.md describes the folders and where new components go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_core.base.errors import ConfigError, DeceptionError, UsageError
from deception_core.base.registry import Kind, lazy, lazy_exports
from deception_core.base.types import (
    Condition,
    JSONObject,
    JSONValue,
    JudgeVerdict,
    Label,
    Message,
    Mode,
    Position,
    RuleVerdict,
    json_array,
    json_number,
    json_object,
)
from deception_core.config.run import RunConfig
from deception_core.contracts.hookspecs import hookimpl

if TYPE_CHECKING:
    from deception_core.base.records import (
        AnalysisReport,
        CausalResult,
        ProbeDirection,
        RecordError,
        Sample,
        Trial,
    )
    from deception_core.base.registry import KindRegistry
    from deception_core.capture.reply_states import REPLY_STATES_OPTION, ReplyTokenStates
    from deception_core.capture.texts import TextRecord, capture_texts, read_text_records, text_records
    from deception_core.config.plugin_options import ComponentParams, RunOptions
    from deception_core.config.sae import SaeSettings, sae_settings
    from deception_core.config.structuring import one_of, option, structure_strings
    from deception_core.contracts.analysis import Analysis, CausalContext, CausalTest
    from deception_core.contracts.capture import (
        CaptureBackend,
        CaptureResult,
        CaptureSpec,
        GenerationRequest,
        Sampling,
    )
    from deception_core.contracts.evaluator import ChoiceScorer, Evaluator, EvaluatorContext, JudgeRequest
    from deception_core.contracts.scenario import (
        FocalUtterance,
        Game,
        GameOptions,
        Request,
        Scenario,
        TrialResult,
        TrialSpec,
    )
    from deception_core.contracts.statements import StatementSet
    from deception_core.model.cache import ActivationCache
    from deception_core.model.conditions import SelectableEdit, generate_conditions, rows_that_fit
    from deception_core.model.fingerprint import mismatch as fingerprint_mismatch
    from deception_core.model.forced import (
        ForcedPass,
        LayerEdit,
        as_interventions,
        hooked,
        replies_after_prompts,
        replies_from_last_prompt_token,
        teacher_forced,
    )
    from deception_core.model.intervention import Intervention
    from deception_core.model.surface import Model, load_model
    from deception_core.outputs.policy import check_output_file, publish_file
    from deception_core.pipeline.runner import InterpretabilityRunner, RunResults
    from deception_core.plugins import get_plugin_set
    from deception_core.sae import registered_saes, resolve_sae
    from deception_core.sae.encode import load_sae
    from deception_core.store.dataset import Dataset, DatasetError, atomic_write_text, read_dataset, write_dataset
    from deception_core.store.meta import DatasetMeta
    from deception_core.ui.console import SHOW
    from deception_core.ui.progress import progress_bar

#: public name -> ``module:attribute`` it is read from on first use
_LAZY: dict[str, str] = {
    "ComponentParams": "deception_core.config.plugin_options:ComponentParams",
    "RunOptions": "deception_core.config.plugin_options:RunOptions",
    "SaeSettings": "deception_core.config.sae:SaeSettings",
    "sae_settings": "deception_core.config.sae:sae_settings",
    "KindRegistry": "deception_core.base.registry:KindRegistry",
    # records
    "AnalysisReport": "deception_core.base.records:AnalysisReport",
    "CausalResult": "deception_core.base.records:CausalResult",
    "ProbeDirection": "deception_core.base.records:ProbeDirection",
    "RecordError": "deception_core.base.records:RecordError",
    "Sample": "deception_core.base.records:Sample",
    "Trial": "deception_core.base.records:Trial",
    # the dataset
    "Dataset": "deception_core.store.dataset:Dataset",
    "DatasetError": "deception_core.store.dataset:DatasetError",
    "read_dataset": "deception_core.store.dataset:read_dataset",
    "write_dataset": "deception_core.store.dataset:write_dataset",
    "DatasetMeta": "deception_core.store.meta:DatasetMeta",
    # running
    "InterpretabilityRunner": "deception_core.pipeline.runner:InterpretabilityRunner",
    "RunResults": "deception_core.pipeline.runner:RunResults",
    # the model
    "load_model": "deception_core.model.surface:load_model",
    "Model": "deception_core.model.surface:Model",
    "ActivationCache": "deception_core.model.cache:ActivationCache",
    "fingerprint_mismatch": "deception_core.model.fingerprint:mismatch",
    # teacher-forced passes under residual-stream edits (what causal tests build on)
    "teacher_forced": "deception_core.model.forced:teacher_forced",
    "replies_after_prompts": "deception_core.model.forced:replies_after_prompts",
    "replies_from_last_prompt_token": "deception_core.model.forced:replies_from_last_prompt_token",
    "generate_conditions": "deception_core.model.conditions:generate_conditions",
    "rows_that_fit": "deception_core.model.conditions:rows_that_fit",
    "SelectableEdit": "deception_core.model.conditions:SelectableEdit",
    "ForcedPass": "deception_core.model.forced:ForcedPass",
    "LayerEdit": "deception_core.model.forced:LayerEdit",
    "as_interventions": "deception_core.model.forced:as_interventions",
    "hooked": "deception_core.model.forced:hooked",
    "Intervention": "deception_core.model.intervention:Intervention",
    "capture_texts": "deception_core.capture.texts:capture_texts",
    "read_text_records": "deception_core.capture.texts:read_text_records",
    "text_records": "deception_core.capture.texts:text_records",
    "TextRecord": "deception_core.capture.texts:TextRecord",
    # the contracts
    "Analysis": "deception_core.contracts.analysis:Analysis",
    "CausalContext": "deception_core.contracts.analysis:CausalContext",
    "CausalTest": "deception_core.contracts.analysis:CausalTest",
    "CaptureBackend": "deception_core.contracts.capture:CaptureBackend",
    "CaptureResult": "deception_core.contracts.capture:CaptureResult",
    "CaptureSpec": "deception_core.contracts.capture:CaptureSpec",
    "GenerationRequest": "deception_core.contracts.capture:GenerationRequest",
    "Sampling": "deception_core.contracts.capture:Sampling",
    "ChoiceScorer": "deception_core.contracts.evaluator:ChoiceScorer",
    "Evaluator": "deception_core.contracts.evaluator:Evaluator",
    "EvaluatorContext": "deception_core.contracts.evaluator:EvaluatorContext",
    "JudgeRequest": "deception_core.contracts.evaluator:JudgeRequest",
    "FocalUtterance": "deception_core.contracts.scenario:FocalUtterance",
    "Game": "deception_core.contracts.scenario:Game",
    "GameOptions": "deception_core.contracts.scenario:GameOptions",
    "Request": "deception_core.contracts.scenario:Request",
    "Scenario": "deception_core.contracts.scenario:Scenario",
    "TrialResult": "deception_core.contracts.scenario:TrialResult",
    "TrialSpec": "deception_core.contracts.scenario:TrialSpec",
    "StatementSet": "deception_core.contracts.statements:StatementSet",
    # helpers plugins share: settings, option names, files, logging, progress, plugins, SAEs
    "one_of": "deception_core.config.structuring:one_of",
    "option": "deception_core.config.structuring:option",
    "structure_strings": "deception_core.config.structuring:structure_strings",
    "REPLY_STATES_OPTION": "deception_core.capture.reply_states:REPLY_STATES_OPTION",
    "ReplyTokenStates": "deception_core.capture.reply_states:ReplyTokenStates",
    "atomic_write_text": "deception_core.store.dataset:atomic_write_text",
    "check_output_file": "deception_core.outputs.policy:check_output_file",
    "publish_file": "deception_core.outputs.policy:publish_file",
    "SHOW": "deception_core.ui.console:SHOW",
    "progress_bar": "deception_core.ui.progress:progress_bar",
    "get_plugin_set": "deception_core.plugins:get_plugin_set",
    "registered_saes": "deception_core.sae:registered_saes",
    "resolve_sae": "deception_core.sae:resolve_sae",
    "load_sae": "deception_core.sae.encode:load_sae",
}

__all__ = [
    "ActivationCache",
    "Analysis",
    "AnalysisReport",
    "CaptureBackend",
    "CaptureResult",
    "CaptureSpec",
    "CausalContext",
    "CausalResult",
    "CausalTest",
    "ChoiceScorer",
    "ComponentParams",
    "Condition",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DatasetMeta",
    "DeceptionError",
    "Evaluator",
    "EvaluatorContext",
    "FocalUtterance",
    "ForcedPass",
    "Game",
    "GameOptions",
    "GenerationRequest",
    "InterpretabilityRunner",
    "Intervention",
    "JSONObject",
    "JSONValue",
    "JudgeRequest",
    "JudgeVerdict",
    "Kind",
    "KindRegistry",
    "Label",
    "LayerEdit",
    "Message",
    "Mode",
    "Model",
    "Position",
    "ProbeDirection",
    "REPLY_STATES_OPTION",
    "RecordError",
    "ReplyTokenStates",
    "Request",
    "RuleVerdict",
    "RunConfig",
    "RunOptions",
    "RunResults",
    "SHOW",
    "SaeSettings",
    "Sample",
    "Sampling",
    "Scenario",
    "SelectableEdit",
    "StatementSet",
    "TextRecord",
    "Trial",
    "TrialResult",
    "TrialSpec",
    "UsageError",
    "__version__",
    "as_interventions",
    "atomic_write_text",
    "capture_texts",
    "check_output_file",
    "fingerprint_mismatch",
    "generate_conditions",
    "get_plugin_set",
    "hooked",
    "hookimpl",
    "json_array",
    "json_number",
    "json_object",
    "lazy",
    "lazy_exports",
    "load_model",
    "load_sae",
    "one_of",
    "option",
    "progress_bar",
    "publish_file",
    "read_dataset",
    "read_text_records",
    "registered_saes",
    "replies_after_prompts",
    "replies_from_last_prompt_token",
    "resolve_sae",
    "rows_that_fit",
    "sae_settings",
    "structure_strings",
    "teacher_forced",
    "text_records",
    "write_dataset",
]


_lazy_getattr, __dir__ = lazy_exports(__name__, _LAZY, __all__)


def __getattr__(name: str) -> object:
    """The lazily exported names (PEP 562), and the installed version."""
    if name == "__version__":
        return _version()
    return _lazy_getattr(name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deception-core")
    except PackageNotFoundError:
        return "0+unknown"

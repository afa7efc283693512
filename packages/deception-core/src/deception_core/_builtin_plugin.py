"""The core's own plugin: the built-in capture backends, SAE releases, the SAE's flags and the ``inspect``
statement set (an Inspect eval log's dialogues).

Registered through the ``deception`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_core.contracts.hookspecs import hookimpl
from deception_core.sae.options import SAE_OPTIONS
from deception_core.sae.releases import sae_lens_directory

if TYPE_CHECKING:
    from deception_core.base.registry import KindRegistry
    from deception_core.config.plugin_options import RunOptions
    from deception_core.sae.options import SaeFlags


@hookimpl
def register_capture_backends(registry: KindRegistry) -> None:
    registry.add(
        "hf",
        "deception_core.capture.hf:HFCaptureBackend",
        summary="PyTorch forward hooks on the HF decoder layers during generate (default)",
    )
    registry.add(
        "transformer-lens",
        "deception_core.capture.transformer_lens:TransformerLensCaptureBackend",
        summary="TransformerLens hook points (blocks.L.hook_resid_post, ...) during generate, one model copy",
    )
    registry.add(
        "hybrid",
        "deception_core.capture.hybrid:HybridCaptureBackend",
        summary="HF generate, then one TransformerLens forward over prompt + reply (second model copy)",
    )


@hookimpl
def register_statement_sets(registry: KindRegistry) -> None:
    registry.add("inspect", "deception_core.capture.inspect_source:InspectLog",
                 summary="The assistant messages of an Inspect eval log (--param path=LOG.eval; replies=all, last "
                         "or labelled), each after the messages before it; needs deception-core[inspect]")


@hookimpl
def register_engines(registry: KindRegistry) -> None:
    registry.add("hf", "deception_core.contracts.engine:InProcessEngine",
                 summary="the in-process model generates, recording the residual stream as it goes (default)")
    registry.add("openai", "deception_core.engine.openai:OpenAIEngine",
                 summary="an OpenAI-compatible server (vLLM, SGLang, TGI, transformers serve) generates; "
                         "captured calls are replayed through the in-process model")


@hookimpl
def register_sae_releases(registry: KindRegistry) -> None:
    registry.add("sae-lens", sae_lens_directory,
                 summary="sae-lens's pretrained SAE directory (pretrained_saes.yaml), read offline")


@hookimpl
def register_run_options() -> RunOptions[SaeFlags]:
    return SAE_OPTIONS


@hookimpl(trylast=True)
def resolve_capture_backend(model_id: str, model_type: str | None, requested: str | None) -> str | None:
    return requested or "hf"

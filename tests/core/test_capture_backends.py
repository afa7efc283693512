"""The three built-in capture backends agree, batch without changing samples, and honour interventions.

Stated tolerance: ``transformer-lens`` and ``hybrid`` match ``hf`` within rtol 1e-4 / atol 1e-5 at
every layer and position (observed: about 1e-8 on GPT-2/Llama, 4e-6 on Gemma-3, whose bridge
re-implements the norm). Both wrap the HF weights in a TransformerBridge without weight processing
(no folded layer norms), so there is no systematic difference to document; ``hybrid`` reads a
full-sequence forward instead of the KV-cache passes, which only changes float rounding. Greedy
tokens are identical.
"""

from __future__ import annotations

import pytest
import torch

from deception_core.base.errors import UsageError
from deception_core.base.types import Position
from deception_core.capture.hf import HFCaptureBackend
from deception_core.capture.hybrid import HybridCaptureBackend
from deception_core.capture.transformer_lens import TransformerLensCaptureBackend
from deception_core.contracts.capture import CaptureSpec, GenerationRequest, Sampling
from deception_core.model.intervention import Intervention
from deception_core.model.surface import from_hf
from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

ALL = (Position.LAST_PROMPT, Position.REPLY_MEAN, Position.REPLY_LAST, Position.REPLY_ALL)
BACKENDS = (HFCaptureBackend, TransformerLensCaptureBackend, HybridCaptureBackend)
TOL = dict(rtol=1e-4, atol=1e-5)
TEXTS = ("My minimum is thirty points, so", "Deal", "The car has a small oil leak but runs well")


def _loaded(arch: str):
    return from_hf(tiny_hf_model(arch, n_layers=4), tiny_tokenizer(), model_id=f"tiny-{arch}", source="test")


def _requests(tokenizer, n_new: int = 8, stop=()):
    return [GenerationRequest(tuple(tokenizer(t)["input_ids"]), n_new, seed=11 + i, stop=stop) for i, t in enumerate(TEXTS)]


def _assert_same(a, b) -> None:
    assert a.reply_ids == b.reply_ids
    assert a.text == b.text
    assert a.stopped_by == b.stopped_by
    assert set(a.activations) == set(b.activations)
    for position in a.activations:
        torch.testing.assert_close(a.activations[position], b.activations[position], **TOL)
    if a.reply_all is not None:
        torch.testing.assert_close(a.reply_all, b.reply_all, **TOL)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_all_backends_give_the_same_tokens_and_activations(arch) -> None:
    results = {}
    for cls in BACKENDS:
        loaded = _loaded(arch)  # a fresh copy each: the same seed gives the same weights
        backend = cls(loaded, CaptureSpec((0, 2, 3), ALL))
        results[cls.name] = backend.generate(_requests(loaded.tokenizer, stop=("e",) if arch == "gpt2" else ()),
                                             Sampling(temperature=0))
        backend.close()
    assert len({tuple(r.reply_ids for r in rs) for rs in results.values()}) == 1
    assert any(len(r.reply_ids) > 1 for r in results["hf"])
    for name in ("transformer-lens", "hybrid"):
        for reference, other in zip(results["hf"], results[name], strict=True):
            _assert_same(reference, other)
            assert other.activations[Position.LAST_PROMPT].shape == (3, 64)


@pytest.mark.parametrize("cls", BACKENDS, ids=lambda c: c.name)
@pytest.mark.parametrize("sampling", [Sampling(temperature=0), Sampling(temperature=0.9, top_p=0.9)],
                         ids=["greedy", "seeded"])
def test_batched_equals_unbatched(cls, sampling) -> None:
    loaded = _loaded("llama")
    backend = cls(loaded, CaptureSpec((1, 3), ALL))
    requests = _requests(loaded.tokenizer)
    together = backend.generate(requests, sampling)
    for request, batched in zip(requests, together, strict=True):
        (alone,) = backend.generate([request], sampling)
        _assert_same(alone, batched)
    backend.close()


@pytest.mark.parametrize("cls", BACKENDS, ids=lambda c: c.name)
def test_interventions_apply_during_generation(cls) -> None:
    loaded = _loaded("llama")
    backend = cls(loaded, CaptureSpec((1, 2)))
    request = _requests(loaded.tokenizer)[:1]
    steps = []

    def push(hidden, step):
        steps.append(step)
        return hidden + 50.0

    (baseline,) = backend.generate(request, Sampling(temperature=0))
    (pushed,) = backend.generate(request, Sampling(temperature=0), [Intervention(1, push)])
    shift = pushed.activations[Position.LAST_PROMPT][0] - baseline.activations[Position.LAST_PROMPT][0]
    torch.testing.assert_close(shift, torch.full_like(shift, 50.0), rtol=1e-4, atol=1e-3)
    assert steps[0] == 0
    assert len(steps) >= 2
    assert pushed.reply_ids != baseline.reply_ids  # a shift this large changes the greedy reply
    # the same steering through the hf backend on a fresh copy gives the same reply
    reference = HFCaptureBackend(_loaded("llama"), CaptureSpec((1, 2)))
    (expected,) = reference.generate(request, Sampling(temperature=0), [Intervention(1, lambda h, s: h + 50.0)])
    _assert_same(expected, pushed)
    backend.close()


@pytest.mark.parametrize("cls", BACKENDS[1:], ids=lambda c: c.name)
def test_named_hook_points_are_recorded(cls) -> None:
    loaded = _loaded("gemma3")
    spec = CaptureSpec((1,), hook_names=("blocks.2.hook_resid_pre", "blocks.0.hook_mlp_out"))
    backend = cls(loaded, spec)
    for result in backend.generate(_requests(loaded.tokenizer), Sampling(temperature=0)):
        assert set(result.hooks) == set(spec.hook_names)
        for position, vector in result.activations.items():
            # the input of block 2 is the output of block 1: a known answer
            torch.testing.assert_close(result.hooks["blocks.2.hook_resid_pre"][position], vector[0], **TOL)
            assert result.hooks["blocks.0.hook_mlp_out"][position].shape == (64,)
    backend.close()


def test_hook_names_are_checked() -> None:
    loaded = _loaded("llama")
    with pytest.raises(UsageError, match="need --capture-backend transformer-lens or hybrid"):
        HFCaptureBackend(loaded, CaptureSpec((1,), hook_names=("blocks.1.hook_mlp_out",)))
    with pytest.raises(UsageError, match="unknown TransformerLens hook point"):
        TransformerLensCaptureBackend(loaded, CaptureSpec((1,), hook_names=("blocks.1.hook_nothing",)))
    with pytest.raises(UsageError, match="cannot be read per token"):
        TransformerLensCaptureBackend(loaded, CaptureSpec((1,), hook_names=("blocks.1.attn.hook_pattern",)))


def test_transformer_lens_close_gives_the_model_back_untouched() -> None:
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    loaded = _loaded("gemma3")
    names = {name for name, _ in loaded.hf_model.named_parameters()}
    (before,) = HFCaptureBackend(loaded, CaptureSpec((1,))).generate(_requests(loaded.tokenizer)[:1], Sampling(0))
    backend = TransformerLensCaptureBackend(loaded, CaptureSpec((1,)))
    assert any(isinstance(m, GeneralizedComponent) for m in loaded.hf_model.modules())
    backend.close()
    assert not any(isinstance(m, GeneralizedComponent) for m in loaded.hf_model.modules())
    assert {name for name, _ in loaded.hf_model.named_parameters()} == names
    (after,) = HFCaptureBackend(loaded, CaptureSpec((1,))).generate(_requests(loaded.tokenizer)[:1], Sampling(0))
    _assert_same(before, after)


def test_only_hybrid_keeps_a_second_model_copy() -> None:
    loaded = _loaded("llama")
    pointers = {p.data_ptr() for p in loaded.hf_model.parameters()}
    tl = TransformerLensCaptureBackend(loaded, CaptureSpec((1,)))
    shared = {p.data_ptr() for p in tl.bridge.parameters()}
    added = sum(p.numel() for p in tl.bridge.parameters() if p.data_ptr() not in pointers)
    assert pointers <= shared
    assert added <= 320  # at most a zero unembedding bias
    tl.close()
    hybrid = HybridCaptureBackend(loaded, CaptureSpec((1,)))
    assert not {p.data_ptr() for p in hybrid.tl_model.parameters()} & pointers


def test_runs_with_each_backend_store_the_same_dataset(tiny_model_dir, fake_plugin_set, tmp_path) -> None:
    import numpy as np

    from deception_core import InterpretabilityRunner, RunConfig

    datasets = {}
    for name, extra in {"hf": {}, "transformer-lens": {"capture_backend": "transformer-lens"},
                        "hybrid": {"hybrid": True}}.items():
        config = RunConfig(model=str(tiny_model_dir), scenario_names=["echo"], trials=2, max_rounds=2, max_tokens=6,
                           evaluator="echo-judge", output=str(tmp_path / name), analyze=False, temperature=0,
                           batch_size=2, layers="1,3", **extra)
        datasets[name] = InterpretabilityRunner(config, plugins=fake_plugin_set).run().dataset
        assert datasets[name].meta["capture_backend"] == name
    for name in ("transformer-lens", "hybrid"):
        assert datasets[name].column("reply_text") == datasets["hf"].column("reply_text")
        for position in ("last_prompt", "reply_mean", "reply_last"):
            for layer in (1, 3):
                np.testing.assert_allclose(datasets[name].matrix(layer, position), datasets["hf"].matrix(layer, position),
                                           rtol=1e-4, atol=1e-5)


def test_a_plugin_can_claim_a_model_type_for_its_backend(tiny_model_dir, tmp_path) -> None:
    from deception_core import InterpretabilityRunner, RunConfig
    from deception_core.contracts.hookspecs import hookimpl
    from deception_core.plugins import build_plugin_set
    from deception_core.testing.fakes import FakePlugin

    class ClaimLlama:
        @hookimpl
        def resolve_capture_backend(self, model_id, model_type, requested):
            return requested or ("transformer-lens" if model_type == "llama" else None)

    plugins = build_plugin_set(extra_plugins={"fake": FakePlugin(), "claim": ClaimLlama()})
    base = dict(model=str(tiny_model_dir), scenario_names=["echo"], evaluator="echo-judge", output=str(tmp_path / "o"))
    assert InterpretabilityRunner(RunConfig(**base), plugins=plugins).validate().run.capture_backend == "transformer-lens"
    explicit = RunConfig(**base, capture_backend="hf")
    assert InterpretabilityRunner(explicit, plugins=plugins).validate().run.capture_backend == "hf"

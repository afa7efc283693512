"""Every way the toolkit touches a model goes through `deception_core.model`: a scan of the packages' source.

Outside ``deception_core/model/`` no module may call ``from_pretrained`` (weights, tokenizers or
configs: the model package reads them), build a TransformerLens model, or call an HF model:
``m(...)``, ``m.forward(...)``, ``m.generate(...)`` or ``m.run_with_cache(...)`` where ``m`` is a
model object. A model object is what the surface hands out as ``.hf_model`` (or an object's ``.hf`` or
``.tl_model``, the names capture backends used), anything assigned from one (also through ``copy.deepcopy``), and parameters named
``hf_model``/``tl_model``/``hf``. The surface's own methods (``Model.generate``, ``Model.run_with_cache``)
and capture backends' ``generate`` are not model objects, so calling them is what the rule asks for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ("deception_core", "model")
#: attributes and parameter names that hold an HF (or bridged) model
MODEL_NAMES = frozenset({"hf_model", "tl_model", "hf"})
CALLS = frozenset({"forward", "generate", "run_with_cache", "__call__"})
#: constructors of TransformerLens models (they run forward passes of their own)
LENS = frozenset({"TransformerBridge", "HookedTransformer"})
#: (module, receiver) pairs allowed to call from_pretrained: weights that are not the language model
ALLOWED_FROM_PRETRAINED = frozenset({("deception_core/sae/encode.py", "SAE")})


def _is_model(node: ast.expr, tracked: set[str]) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in MODEL_NAMES or (isinstance(node.value, ast.Name) and node.value.id == "self"
                                            and node.attr in tracked)
    if isinstance(node, ast.Name):
        return node.id in tracked
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("deepcopy", "copy"):
        return any(_is_model(arg, tracked) for arg in node.args)
    return False


def _receiver(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


class _Scan(ast.NodeVisitor):
    """Collect ``(line, what)`` for every model touch; names bound to model objects are tracked per module."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.tracked: set[str] = set(MODEL_NAMES)
        self.found: list[tuple[int, str]] = []

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            for t, v in zip(target.elts, value.elts, strict=False):
                self._bind(t, v)
            return
        if not _is_model(value, self.tracked):
            return
        if isinstance(target, ast.Name):
            self.tracked.add(target.id)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            self.tracked.add(target.attr)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
            if (self.module, _receiver(func.value)) not in ALLOWED_FROM_PRETRAINED:
                self.found.append((node.lineno, f"{ast.unparse(func)}(...)"))
        elif self._touches(func):
            self.found.append((node.lineno, f"{ast.unparse(func)}(...)"))
        self.generic_visit(node)


    def _touches(self, func: ast.expr) -> bool:
        """A TransformerLens constructor, a call of a model object, or its forward/generate/run_with_cache."""
        if _is_model(func, self.tracked):
            return True
        if not isinstance(func, ast.Attribute):
            return False
        return _receiver(func) in LENS or (func.attr in CALLS and _is_model(func.value, self.tracked))


def violations(source: str, module: str) -> list[tuple[int, str]]:
    """Model touches in ``source`` (``module``: its path below ``src/``, for the allow list)."""
    scan = _Scan(module)
    scan.visit(ast.parse(source))
    return scan.found


def _package_modules() -> list[tuple[str, Path]]:
    out = []
    for src in sorted((ROOT / "packages").glob("*/src")):
        for path in sorted(src.rglob("*.py")):
            module = path.relative_to(src)
            if module.parts[:2] != SURFACE:
                out.append((module.as_posix(), path))
    return out


def test_the_scan_covers_every_package() -> None:
    packages = {module.split("/")[0] for module, _ in _package_modules()}
    assert packages >= {"deception_core", "deception_probes", "deception_causal", "deception_scenarios"}


def test_no_module_outside_the_model_package_loads_or_runs_a_model() -> None:
    found = [f"{module}:{line}: {what}" for module, path in _package_modules()
             for line, what in violations(path.read_text(encoding="utf-8"), module)]
    assert found == []


@pytest.mark.parametrize("planted", [
    "from transformers import AutoModelForCausalLM\nm = AutoModelForCausalLM.from_pretrained('x')\n",
    "from transformers import AutoTokenizer\nt = AutoTokenizer.from_pretrained('x')\n",
    "def f(loaded, ids):\n    return loaded.hf_model(input_ids=ids)\n",
    "def f(loaded, ids):\n    hf, tok = loaded.hf_model, loaded.tokenizer\n    return hf.generate(input_ids=ids)\n",
    "def f(hf_model, ids):\n    return hf_model.forward(ids)\n",
    "class B:\n    def __init__(self, model):\n        self.hf = model.hf_model\n    def go(self, ids):\n"
    "        return self.hf(input_ids=ids)\n",
    "import copy\ndef f(model, ids):\n    twin = copy.deepcopy(model.hf_model)\n    return twin(ids)\n",
    "def f(backend, ids):\n    hf, tokenizer = backend.hf, backend.tokenizer\n    return hf(input_ids=ids)\n",
    "def f(bridge_cls):\n    return TransformerBridge.boot_transformers('x')\n",
])
def test_the_scan_catches_a_planted_violation(planted: str) -> None:
    assert len(violations(planted, "deception_core/label/planted.py")) == 1


@pytest.mark.parametrize("allowed", [
    "def f(model, texts):\n    return model.run_with_cache(texts, layers=[1])\n",
    "def f(backend, requests, sampling):\n    return backend.generate(requests, sampling)\n",
    "def f(model):\n    return next(model.hf_model.parameters()).device\n",
    "def f(model, ids):\n    return model.generate(ids)\n",
])
def test_the_scan_lets_the_surface_be_used(allowed: str) -> None:
    assert violations(allowed, "deception_core/label/allowed.py") == []


def test_the_old_code_had_these_touches() -> None:
    """The scan finds the forward passes the model surface replaced (a sample of the code before it)."""
    old_texts_capture = (
        "def forward_states(hf_model, sequences, layers, pad_id):\n"
        "    result = hf_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)\n")
    old_hybrid = ("class H:\n    def __init__(self, model):\n        self.hf = model.hf_model\n"
                  "        self.tl_model = copy.deepcopy(self.hf)\n"
                  "    def states(self):\n        self.tl_model(input_ids=ids)\n"
                  "    def generate(self):\n        return self.hf.generate(input_ids=ids)\n")
    assert [what for _, what in violations(old_texts_capture, "deception_core/capture/texts.py")] == ["hf_model(...)"]
    assert [what for _, what in violations(old_hybrid, "deception_core/capture/hybrid.py")] == [
        "self.tl_model(...)", "self.hf.generate(...)"]

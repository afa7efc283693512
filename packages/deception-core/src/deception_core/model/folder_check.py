"""A local model folder checked before anything loads: config readable, weights and tokenizer present.

`transformers` would otherwise fail deep inside loading (or, for a path it does not recognise, ask
the Hugging Face hub), after the run has started. Here each problem is a `UsageError` naming the
file and the fix. Weight files are checked as far as reading them costs nothing: a safetensors
file's header must parse and the file must be long enough for the tensors it declares (a truncated
download fails here), and every shard an index names must exist.
"""

from __future__ import annotations

import json
from pathlib import Path

from deception_core.base.errors import UsageError
from deception_core.base.types import JSONObject

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
#: the largest safetensors header read (real headers are well below this)
MAX_HEADER_BYTES = 100 * 1024 * 1024


def _fail(raw: str, problem: str, fix: str = "point --model at a complete save_pretrained folder") -> UsageError:
    return UsageError(f"--model {raw!r}: {problem}; {fix}")


def read_model_config(raw: str, path: Path) -> JSONObject:
    config_path = path / "config.json"
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(raw, "config.json is not a text file", "restore the model's config.json") from None
    except OSError as error:
        raise _fail(raw, f"config.json cannot be read ({error.strerror})", "check its permissions") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(raw, f"config.json is not valid JSON ({error})", "restore the model's config.json") from None
    if not isinstance(config, dict):
        raise _fail(raw, f"config.json holds a {type(config).__name__}, not a JSON object",
                    "restore the model's config.json")
    return config


def check_safetensors(raw: str, path: Path) -> None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a header")
            length = int.from_bytes(head, "little")
            if length <= 0 or length > MAX_HEADER_BYTES or 8 + length > size:
                raise ValueError("header length out of range")
            header = json.loads(handle.read(length).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as error:
        raise _fail(raw, f"{path.name} is not a readable safetensors file ({error})",
                    "download the weights again") from None
    if 8 + length + end > size:
        raise _fail(raw, f"{path.name} is truncated ({size} bytes, its header declares {8 + length + end})",
                    "download the weights again")


def check_model_folder(raw: str, path: Path) -> None:
    """Raise `UsageError` unless ``path`` holds weights and a tokenizer that can be loaded."""
    for name in INDEX_FILES:
        index_path = path / name
        if index_path.is_file():
            try:
                index = json.loads(index_path.read_text(encoding="utf-8"))
                shards = sorted(set(index["weight_map"].values()))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                raise _fail(raw, f"{name} is not a valid weight index", "download the weights again") from None
            missing = [s for s in shards if not (path / s).is_file()]
            if missing:
                raise _fail(raw, f"{name} names weight file(s) that are missing: {', '.join(missing[:5])}",
                            "download the weights again")
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in path.glob(pattern)})
    if not weights:
        raise _fail(raw, "the folder holds no weights (model.safetensors or pytorch_model.bin)")
    for weight in weights:
        if weight.suffix == ".safetensors":
            check_safetensors(raw, weight)
        elif weight.stat().st_size == 0:
            raise _fail(raw, f"{weight.name} is empty", "download the weights again")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise _fail(raw, f"the folder holds no tokenizer ({' or '.join(TOKENIZER_FILES[:3])}...)",
                    "save the tokenizer beside the model (tokenizer.save_pretrained)")

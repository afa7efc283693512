"""`deception capture DATA --model M --output DIR`: activations of user-supplied statements or dialogues,
or of a registered statement set (``deception capture instructed_pairs ...``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deception_core.base.errors import UsageError
from deception_core.base.registry import Kind
from deception_core.base.selection import parse_layers
from deception_core.base.types import JSONObject
from deception_core.capture.texts import (
    TextRecord,
    capture_texts,
    describe_duplicates,
    fit_context,
    read_text_records,
    text_records,
    token_counts,
)
from deception_core.config.components import build
from deception_core.model import surface  # the module: tests replace its load_model
from deception_core.model.device import resolve_device, resolve_dtype
from deception_core.model.loading import load_tokenizer
from deception_core.model.spec import ModelSpec, peek_model
from deception_core.outputs.policy import OutputClaim, made_by, write_marker
from deception_core.plugins import get_plugin_set
from deception_core.store.dataset import write_dataset


def _params(values: tuple[str, ...]) -> JSONObject:
    """``KEY=VALUE`` pairs; a value is read as JSON when it parses (``5``, ``true``), else as a string."""
    params: JSONObject = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r} must be KEY=VALUE, e.g. --param n_units=10")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def _is_path(data: str) -> bool:
    """DATA names a file (it exists, has a suffix or a directory part) rather than a registered set."""
    path = Path(data)
    return path.exists() or bool(path.suffix) or len(path.parts) > 1


def statement_set_records(name: str, params: JSONObject) -> list[TextRecord]:
    """The records of the registered statement set ``name`` built with ``params`` (exit 2 when unknown)."""

    registry = get_plugin_set().registry
    if (Kind.STATEMENT_SET, name) not in registry:
        valid = ", ".join(sorted(registry.names(Kind.STATEMENT_SET))) or "(none: is deception-scenarios installed?)"
        raise UsageError(f"{name!r} is neither a .jsonl/.csv file nor a registered statement set; registered sets: "
                         f"{valid} (`deception plugins` lists them)")
    statement_set = build(Kind.STATEMENT_SET, name, registry.get(Kind.STATEMENT_SET, name).load(), params)
    return text_records(statement_set.records(), f"statement set {name}")


def _check_new_output(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} is a file; choose a new folder")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty{made_by(out)}; choose a new --output (earlier results are "
                         "never replaced)")


@click.command()
@click.argument("data")
@click.option("--model", "-m", required=True, help="embedded:NAME, a local model directory or a Hugging Face id.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="A new dataset directory.")
@click.option("--layers", default=None, help="Decoder blocks to record, comma-separated, 0-based (default: all).")
@click.option("--device", "-d", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="bfloat16", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of the registered statement set DATA (repeatable), e.g. --param n_units=10.")
@click.option("--truncate", is_flag=True,
              help="Cut records longer than the model's context to their first tokens that fit (default: refuse them).")
def capture(data: str, model: str, output: str, layers: str | None, device: str, dtype: str, batch_size: int,
            params: tuple[str, ...], truncate: bool) -> None:
    """Record activations for the statements or dialogues in DATA (a .jsonl or .csv file, or the name of
    a registered statement set such as `instructed_pairs`) with a plain forward pass (nothing is
    generated) and write a dataset that `deception analyze` and `deception merge` read.

    Each record has `text` or `messages`, and optionally `reply`, `label` (honest, deceptive,
    ambiguous), `group`, `scenario` and `condition`; see the README's "Bring your own data".
    """

    out = Path(output)
    _check_new_output(out)
    if _is_path(data):
        if params:
            raise UsageError(f"--param sets a registered statement set's parameters; {data} is a file")
        records, name = read_text_records(data), Path(data).stem
    else:
        records, name = statement_set_records(data, _params(params)), data
    spec = ModelSpec.parse(model)
    chosen = parse_layers(layers)  # default: every block
    wanted = None if chosen is None else list(chosen)
    resolved = resolve_device(device)  # local checks before a hub model's config is fetched
    info = peek_model(spec)
    depth = info.n_layers
    if wanted is not None and any(not 0 <= layer < depth for layer in wanted):
        raise UsageError(f"--layers {layers}: {model} has decoder blocks 0..{depth - 1}")
    # every record measured against the context (from the config) with the tokenizer alone, before the weights load
    fit_context(token_counts(load_tokenizer(spec), records), info.max_positions, truncate, source=data)
    warning = describe_duplicates(records, data)
    if warning:
        click.echo(f"Warning: {warning}", err=True)
    claim = OutputClaim(out, "capture")  # another process writing there: exit 2 now, before the model loads
    claim.acquire()
    click.get_current_context().call_on_close(claim.release)
    _check_new_output(out)  # again, under the claim
    loaded = surface.load_model(spec, device=resolved, dtype=resolve_dtype(dtype, resolved))
    dataset = capture_texts(loaded, records, wanted, batch_size=batch_size, name=name, truncate=truncate)
    write_dataset(out, dataset)
    write_marker(out, "capture")
    labels = [s.label for s in dataset.samples]
    click.echo(f"captured {len(labels)} samples ({labels.count('honest')} honest, {labels.count('deceptive')} "
               f"deceptive, {labels.count('ambiguous')} ambiguous) at layers {dataset.layers} into {out}"
               + (f"; {dataset.meta.truncated_records} record(s) cut to the model's context"
                  if dataset.meta.truncated_records else ""))

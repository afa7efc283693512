"""`deception capture DATA --model M --output DIR`: activations of user-supplied statements or dialogues."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--model", "-m", required=True, help="embedded:NAME, a local model directory or a Hugging Face id.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="A new dataset directory.")
@click.option("--layers", default=None, help="Decoder blocks to record, comma-separated, 0-based (default: all).")
@click.option("--device", "-d", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="bfloat16", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
def capture(data: str, model: str, output: str, layers: str | None, device: str, dtype: str, batch_size: int) -> None:
    """Record activations for the statements or dialogues in DATA (.jsonl or .csv) with a plain forward
    pass (nothing is generated) and write a dataset that `deception analyze` and `deception merge` read.

    Each record has `text` or `messages`, and optionally `reply`, `label` (honest, deceptive,
    ambiguous), `group`, `scenario` and `condition`; see the README's "Bring your own data".
    """
    from deception_core.capture.texts import capture_texts, read_text_records
    from deception_core.dataset.store import write_dataset
    from deception_core.errors import UsageError
    from deception_core.models.device import resolve_device, resolve_dtype
    from deception_core.models.loading import load_model
    from deception_core.models.spec import ModelSpec, peek_model

    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose a new --output (earlier results are never replaced)")
    records = read_text_records(data)
    spec = ModelSpec.parse(model)
    try:
        wanted = None if layers is None else [int(x) for x in layers.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--layers {layers!r} must be comma-separated integers, e.g. 3,6,9") from None
    depth = peek_model(spec).n_layers
    if wanted is not None and any(not 0 <= layer < depth for layer in wanted):
        raise UsageError(f"--layers {layers}: {model} has decoder blocks 0..{depth - 1}")
    resolved = resolve_device(device)
    loaded = load_model(spec, device=resolved, dtype=resolve_dtype(dtype, resolved))
    dataset = capture_texts(loaded, records, wanted, batch_size=batch_size, name=Path(data).stem)
    write_dataset(out, dataset)
    labels = [s["label"] for s in dataset.samples]
    click.echo(f"captured {len(labels)} samples ({labels.count('honest')} honest, {labels.count('deceptive')} "
               f"deceptive, {labels.count('ambiguous')} ambiguous) at layers {dataset.layers} into {out}")

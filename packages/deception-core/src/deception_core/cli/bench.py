"""`deception bench`: capture throughput against bare `generate`, on any --model."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import click

from deception_core.base.errors import UsageError
from deception_core.base.selection import parse_layers
from deception_core.base.types import JSONObject
from deception_core.bench.capture import format_table, run_benchmark, to_json
from deception_core.bench.causal import causal_json, format_causal_row, run_causal_benchmark
from deception_core.bench.pipeline import format_pipeline_table, pipeline_json, run_pipeline_benchmark
from deception_core.cli.options import refuse_unless
from deception_core.config.run import DEVICES, DTYPES
from deception_core.model import surface  # the module: tests replace its load_model
from deception_core.model.device import resolve_device
from deception_core.model.spec import ModelSpec, peek_model
from deception_core.outputs.policy import check_output_file, publish_file
from deception_core.plan.plan import auto_layers
from deception_core.play.batching import resolve_batch_size

if TYPE_CHECKING:
    from deception_core.model.surface import Model


def _ints(value: str, flag: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated integers such as 1,4,16; got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise UsageError(f"{flag} needs integers of at least 1; got {value!r}")
    return numbers


def _load(model: str, device: str, dtype: str, random_weights: bool) -> Model:
    return surface.load_model(model, device=device, dtype=dtype, random_weights=random_weights)


@click.command()
@click.option("--model", "-m", default="embedded:gemma-3-270m", show_default=True,
              help="Hugging Face id, local directory, or embedded model.")
@click.option("--device", "-d", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="bfloat16", show_default=True,
              help="Model precision; CPU falls back to float32.")
@click.option("--layers", default=None, help="Layers to capture; default: three spread over the depth.")
@click.option("--batch-sizes", default="1,4,16", show_default=True, help="Batch sizes for bare generate and hf capture.")
@click.option("--backend-batch-sizes", default="1", show_default=True,
              help="Batch sizes for the transformer-lens and hybrid stages.")
@click.option("--backends", default="transformer-lens,hybrid", show_default=True,
              help="TransformerLens stages to time besides hf (comma-separated; empty for none).")
@click.option("--new-tokens", type=int, default=24, show_default=True, help="Greedy tokens per reply.")
@click.option("--prompts", "n_prompts", type=int, default=None, help="Prompts per stage (default: the largest batch size).")
@click.option("--repeats", type=int, default=3, show_default=True,
              help="Interleaved rounds; medians are reported (--pipeline: whole runs, so 1 gives a quick look).")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads (default: torch's choice); 1 avoids spin-waiting on a loaded machine.")
@click.option("--random-weights", is_flag=True, help="Build the model from its config.json with random weights.")
@click.option("--pipeline", is_flag=True,
              help="Time whole runs (games, judge, collection, writing) at each batch size and auto, against bare "
                   "generate replaying the same batches.")
@click.option("--trials", type=int, default=2, show_default=True,
              help="--pipeline: trials per scenario, mode and condition (2 scenarios x 2 modes x 2 conditions).")
@click.option("--causal", "causal", is_flag=True,
              help="Time a run of the README quick start's shape with --causal: the play stage and the causal stage "
                   "as the runner times them, and each causal test's status.")
@click.option("--causal-samples", type=int, default=10, show_default=True, help="--causal: prompts per causal test.")
@click.option("--engine", default="hf", show_default=True,
              help="--pipeline: what generates the replies (hf, or openai: the server at --engine-url).")
@click.option("--engine-url", default=None, help="--pipeline --engine openai: the server's base URL.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the results here: a new file outside any run folder.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
@click.pass_context
def bench(ctx: click.Context, model: str, device: str, dtype: str, layers: str | None, batch_sizes: str,
          backend_batch_sizes: str, backends: str, new_tokens: int, n_prompts: int | None, repeats: int,
          threads: int | None, random_weights: bool, pipeline: bool, trials: int, causal: bool, causal_samples: int,
          engine: str, engine_url: str | None, json_path: str | None, overwrite: bool) -> None:
    """Time bare generate, hf capture, transformer-lens and hybrid, at several batch sizes."""

    if causal and pipeline:
        raise UsageError("--causal and --pipeline are separate benches; pass one of them")
    refuse_unless(ctx, pipeline or causal, "--pipeline or --causal", "trials")
    refuse_unless(ctx, causal, "--causal", "causal_samples")
    refuse_unless(ctx, pipeline, "--pipeline", "engine", "engine_url")
    if (engine == "hf") != (engine_url is None):
        raise UsageError("--engine openai needs --engine-url (the server's base URL), and --engine-url needs "
                         "--engine openai")
    refuse_unless(ctx, not (pipeline or causal), "the capture benchmark (without --pipeline or --causal)", "backends",
                  "backend_batch_sizes", "n_prompts", "layers", fix="drop it, or drop --pipeline / --causal")
    resolve_device(device)  # local checks before a hub model's config is fetched
    if json_path is not None:  # refused now, not after the benchmark
        check_output_file(json_path, overwrite, "--json")

    sizes = _ints(batch_sizes, "--batch-sizes")
    backend_sizes = _ints(backend_batch_sizes, "--backend-batch-sizes")
    names = tuple(n.strip() for n in backends.split(",") if n.strip())
    unknown = set(names) - {"transformer-lens", "hybrid"}
    if unknown:
        raise UsageError(f"--backends takes transformer-lens and/or hybrid; got {sorted(unknown)}")
    if new_tokens < 1 or repeats < 1:
        raise UsageError("--new-tokens and --repeats must be at least 1")
    if causal and (trials < 1 or causal_samples < 1):
        raise UsageError("--causal needs --trials and --causal-samples of at least 1")

    info = peek_model(ModelSpec.parse(model))
    chosen = parse_layers(layers) or auto_layers(info.n_layers)
    if max(chosen) >= info.n_layers:
        raise UsageError(f"--layers {list(chosen)}: {model} has {info.n_layers} layers (0 to {info.n_layers - 1})")
    import torch

    if threads:
        torch.set_num_threads(threads)

    loaded = _load(model, device, dtype, random_weights)
    cpu = f"CPU ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    where = torch.cuda.get_device_name() if loaded.device == "cuda" else cpu
    click.echo(f"model {loaded.model_id}: {loaded.n_layers} layers, width {loaded.d_model}, {loaded.dtype} on {where}; "
               f"layers {list(chosen)}; {new_tokens} new tokens per reply; {repeats} rounds", err=True)
    if pipeline:
        _pipeline(loaded, model, sizes, trials, new_tokens, repeats, where, json_path, overwrite, engine, engine_url)
        return
    if causal:
        _causal(loaded, model, trials, causal_samples, repeats, where, json_path, overwrite)
        return
    results = run_benchmark(loaded, layers=chosen, batch_sizes=sizes, backend_batch_sizes=backend_sizes, backends=names,
                            n_prompts=n_prompts, new_tokens=new_tokens, repeats=repeats,
                            progress=lambda message: click.echo(message, err=True))
    header = (f"deception bench: {loaded.model_id} ({loaded.dtype}, {where}), capture layers {list(chosen)}, "
              f"{new_tokens} greedy tokens per reply, median of {repeats} interleaved rounds")
    click.echo(format_table(results, header))
    if json_path:
        _write_json(json_path, {"model": loaded.model_id, "device": where, "dtype": loaded.dtype,
                                "layers": list(chosen), "new_tokens": new_tokens, "repeats": repeats,
                                "results": to_json(results)}, overwrite)


def _write_json(json_path: str, record: JSONObject, overwrite: bool) -> None:
    """``--json``: atomically, and never over a file that appeared during the benchmark (unless --overwrite)."""

    publish_file(Path(json_path), json.dumps(record, indent=2).encode(), overwrite, "--json")


def _pipeline(loaded: Model, model: str, sizes: tuple[int, ...], trials: int, new_tokens: int, repeats: int, where: str,
              json_path: str | None, overwrite: bool, engine: str = "hf", engine_url: str | None = None) -> None:
    if trials < 1:
        raise UsageError("--trials must be at least 1")
    auto = resolve_batch_size("auto", loaded, new_tokens)
    requested: list[int | str] = [*sizes, "auto"]
    if auto in sizes:  # the same run twice would only cost time
        requested.remove("auto")
        click.echo(f"--batch-size auto resolves to {auto} here (the batch {auto} row)", err=True)
    results = run_pipeline_benchmark(loaded, model, batch_sizes=requested, trials=trials, new_tokens=new_tokens,
                                     repeats=repeats, progress=lambda message: click.echo(message, err=True),
                                     engine=engine, engine_url=engine_url)
    engine_note = "" if engine == "hf" else f"--engine {engine} at {engine_url}, "
    header = (f"deception bench --pipeline: {loaded.model_id} ({loaded.dtype}, {where}), {engine_note}"
              f"{results[0].trials if results else 0} trials per run, 1 round, up to {new_tokens} tokens per reply; "
              f"--batch-size auto = {auto}; median of {repeats} interleaved repeat(s)")
    click.echo(format_pipeline_table(results, header))
    if json_path:
        _write_json(json_path, {"model": loaded.model_id, "device": where, "dtype": loaded.dtype,
                                "new_tokens": new_tokens, "auto_batch_size": auto, "repeats": repeats,
                                "engine": engine, "engine_url": engine_url,
                                "results": pipeline_json(results)}, overwrite)


def _causal(loaded: Model, model: str, trials: int, causal_samples: int, repeats: int, where: str,
            json_path: str | None, overwrite: bool) -> None:
    result = run_causal_benchmark(loaded, model, trials=trials, causal_samples=causal_samples, repeats=repeats,
                                  progress=lambda message: click.echo(message, err=True))
    header = (f"deception bench --causal: {loaded.model_id} ({loaded.dtype}, {where}), the quick start's shape "
              f"({result.trials} trials, 2 rounds) with --causal --causal-samples {causal_samples}; stage times "
              f"from the runner, median of {repeats} run(s)")
    click.echo(format_causal_row(result, header))
    if json_path:
        _write_json(json_path, {"model": loaded.model_id, "device": where, "dtype": loaded.dtype,
                                "repeats": repeats, "results": [causal_json(result)]}, overwrite)

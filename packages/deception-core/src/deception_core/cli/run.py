"""`deception run`: every flag of the cloud guide, same names, same defaults."""

from __future__ import annotations

from pathlib import Path

import click

from deception_core.config import DEVICES, DTYPES, MODES, RunConfig


@click.command()
@click.option("--model", "-m", default="google/gemma-2b-it", show_default=True,
              help="Hugging Face id, local directory, or embedded:gemma-3-270m / embedded:smollm2-135m.")
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit) of --model.")
@click.option("--device", "-d", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="bfloat16", show_default=True,
              help="Model precision; CPU falls back to float32 with a notice.")
@click.option("--mode", type=click.Choice(MODES), default="emergent", show_default=True)
@click.option("--scenarios", "scenarios_n", type=int, default=3, show_default=True,
              help="Run the first N registered scenarios (1-6 built in).")
@click.option("--scenario-name", multiple=True, help="Run this scenario (repeatable); overrides --scenarios.")
@click.option("--trials", "-t", type=int, default=40, show_default=True, help="Trials per scenario per condition.")
@click.option("--max-rounds", type=int, default=3, show_default=True)
@click.option("--max-tokens", type=int, default=128, show_default=True, help="Maximum tokens per reply.")
@click.option("--fast", is_flag=True, help="Turn the theory-of-mind step off.")
@click.option("--ultrafast", is_flag=True,
              help="One generation call per round: minimal agents, scripted counterpart, no theory of mind.")
@click.option("--self-report", is_flag=True,
              help="After each move ask the agent whether it matched its private facts (recorded per sample).")
@click.option("--hybrid", is_flag=True, help="HF generation, then one TransformerLens forward (capture backend 'hybrid').")
@click.option("--capture-backend", default=None, help="Capture backend by name (hf, transformer-lens, hybrid, ...).")
@click.option("--layers", default=None, help="Comma-separated layers to capture; default: spread over the depth.")
@click.option("--positions", default="last_prompt,reply_mean,reply_last", show_default=True,
              help="Positions to record; add reply_all to keep every reply token.")
@click.option("--sae", is_flag=True, help="Encode the SAE layer with a sparse autoencoder.")
@click.option("--sae-layer", type=int, default=12, show_default=True)
@click.option("--sae-release", default=None, help="sae-lens release (default: chosen for the model).")
@click.option("--sae-id", default=None, help="SAE id inside the release.")
@click.option("--sae-path", default=None, help="A local SAE directory (sae-lens save_model output).")
@click.option("--causal", is_flag=True, help="Run the causal tests after the probes.")
@click.option("--causal-samples", type=int, default=20, show_default=True)
@click.option("--evaluator", default="local", show_default=True, help="Judge: local, together or google.")
@click.option("--label-policy", type=click.Choice(["agree", "rule"]), default="agree", show_default=True,
              help="agree: rule label only when the judge agrees, else ambiguous; rule: the rule decides.")
@click.option("--output", "-o", default="./experiment_output", show_default=True)
@click.option("--checkpoint-dir", default=None, help="Save each finished trial here; re-running resumes.")
@click.option("--shard", default=None, help="Play only shard I of N (I/N), for many pods.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Trials generated together.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True, help="0 for greedy decoding.")
@click.option("--top-p", type=float, default=0.9, show_default=True)
@click.option("--no-analyze", is_flag=True, help="Write the dataset only; run `deception analyze` later.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A JSON RunConfig; flags given on the command line override it.")
@click.option("--verbose", "-v", is_flag=True, help="Debug-level logging (console and run.log).")
@click.pass_context
def run(ctx: click.Context, **flags) -> None:
    """Run negotiation trials, capture activations, label, and train probes."""
    config_file = flags.pop("config_file")
    rename = {"scenarios_n": "scenarios", "scenario_name": "scenario_names", "no_analyze": "analyze"}
    values = {}
    for name, value in flags.items():
        key = rename.get(name, name)
        values[key] = (not value) if name == "no_analyze" else value
    if config_file:
        base = RunConfig.from_file(config_file).to_dict()
        explicit = {
            rename.get(n, n): values[rename.get(n, n)]
            for n in flags
            if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT
        }
        values = {**base, **explicit}
    config = RunConfig.from_dict(values)
    _configure_console(config.verbose)
    from deception_core.runner import InterpretabilityRunner

    results = InterpretabilityRunner(config).run()
    click.echo(results.summary)
    click.echo(f"wall time {results.wall_seconds:.1f} s; outputs in {Path(config.output).resolve()}")


def _configure_console(verbose: bool) -> None:
    import logging

    logger = logging.getLogger("deception")
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)

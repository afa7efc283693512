"""`deception report`, `deception export` and `deception relabel`: look at a run's results."""

from __future__ import annotations

from pathlib import Path

import click

from deception_core.base.errors import UsageError
from deception_core.config.run import LABEL_POLICIES, RELABEL_MAX_JUDGE_FAILURES
from deception_core.label.relabel import relabel as run_relabel
from deception_core.outputs.files import label_table
from deception_core.outputs.inspect_log import check_suffix, require_inspect, write_inspect_log
from deception_core.outputs.policy import OutputClaim, check_output_file
from deception_core.report import write_report
from deception_core.report.frames import export_frame, probe_scores, with_probe_scores
from deception_core.store.dataset import read_dataset


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Where to write the HTML file (default: RUN_DIR/report.html).")
@click.option("--no-tokens", is_flag=True,
              help="Do not load the run's tokenizer: per-token scores are shown as a strip of coloured cells.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file (RUN_DIR/report.html is always "
                                                "replaced).")
def report(run_dir: str, output: str | None, no_tokens: bool, overwrite: bool) -> None:
    """Write one self-contained HTML page of the run: labels, probes, plots, every transcript, filters."""

    path = write_report(run_dir, output, decode_tokens=not no_tokens, overwrite=overwrite)
    click.echo(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl", "inspect"]), default="parquet",
              show_default=True,
              help="A table (parquet, csv, jsonl) or an Inspect eval log (inspect: one sample per trial, needs "
                   "deception-core[inspect]).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The file to write: a new file outside any run folder (FILE.eval for --format inspect).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@click.option("--activations", "activations", multiple=True, metavar="LAYER:POSITION",
              help="Add the activation vectors at LAYER:POSITION as a column (repeatable; 'all' for every one). "
                   "Parquet and JSON Lines only.")
def export(run_dir: str, fmt: str, output: str, overwrite: bool, activations: tuple[str, ...]) -> None:
    """Write the run's samples as a table: one row per focal utterance (columns: README, 'Data frames').
    CSV cells that start with = + - @ (or a tab or carriage return) get a leading ' so that a
    spreadsheet does not run them as formulas.

    --format inspect writes an Inspect eval log instead (`inspect view` opens it): one sample per
    trial, its transcript as the messages, the labels, the judge's verdicts and the probe scores as
    sample scores and metadata.
    """

    check_output_file(output, overwrite)
    if fmt == "inspect":
        if activations:
            raise UsageError("--activations needs --format parquet or jsonl (an Inspect log holds no vectors)")
        _export_inspect(run_dir, output, overwrite)
        return

    pairs: bool | list[tuple[int, str]] = False
    if activations:
        if fmt == "csv":
            raise UsageError("--activations needs --format parquet or jsonl (a CSV cell cannot hold a vector)")
        if "all" in activations:
            pairs = True
        else:
            pairs = []
            for item in activations:
                layer, sep, position = item.partition(":")
                if not sep or not layer.strip().isdigit():
                    raise UsageError(f"--activations takes LAYER:POSITION such as 6:reply_mean; got {item!r}")
                pairs.append((int(layer), position.strip()))
    dataset = read_dataset(run_dir)
    frame = with_probe_scores(dataset.to_pandas(activations=pairs), run_dir)
    path = export_frame(frame, output, fmt, overwrite)
    click.echo(f"export: {len(frame)} rows x {len(frame.columns)} columns -> {path}")


def _export_inspect(run_dir: str, output: str, overwrite: bool) -> None:
    """`deception export --format inspect`: the run as an Inspect eval log (checks first, then one write)."""
    check_suffix(output, "--output")
    require_inspect()
    dataset = read_dataset(run_dir)
    probes = probe_scores(run_dir, dataset)
    path = write_inspect_log(dataset, probes, output, overwrite, name=Path(run_dir).resolve().name,
                             location=str(Path(run_dir).resolve()))
    trials = len({s.trial_key for s in dataset.samples})
    click.echo(f"export: {trials} trial(s), {len(dataset)} focal utterance(s)"
               + ("" if probes is None else " with probe scores") + f" -> {path} (Inspect log; `inspect view` "
               "opens it)")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--evaluator", default=None, help="The judge (default: the run's). local, together, google, ...")
@click.option("--label-policy", type=click.Choice(LABEL_POLICIES), default=None,
              help="agree or rule (default: the run's).")
@click.option("--no-analyze", is_flag=True, help="Only re-label; run `deception analyze` later.")
@click.option("--max-judge-failures", type=click.FloatRange(0, 1), default=RELABEL_MAX_JUDGE_FAILURES,
              show_default=True,
              help="The share of judge calls that may fail (those samples keep their labels); above it nothing "
                   "is applied and the command exits 1.")
def relabel(run_dir: str, evaluator: str | None, label_policy: str | None, no_analyze: bool,
            max_judge_failures: float) -> None:
    """Judge the stored utterances again (no game is replayed), keep the old labels, re-run the analysis."""
    import logging

    if Path(run_dir).is_dir():  # a run, analyze or relabel writing there: exit 2
        claim = OutputClaim(run_dir, "relabel", "RUN_DIR")
        claim.acquire()
        click.get_current_context().call_on_close(claim.release)
    logger = logging.getLogger("deception")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = run_relabel(Path(run_dir), evaluator=evaluator, label_policy=label_policy, analyze=not no_analyze,
                             max_failures=max_judge_failures)
    finally:
        logger.removeHandler(handler)
    click.echo(f"relabel: {result.changed} of {len(result.dataset)} label(s) changed by {result.evaluator} "
               f"({result.label_policy}); judge cache: {result.cache_hits} hit(s), {result.cache_misses} new answer(s)"
               + (f"; {result.kept} kept their earlier labels (the judge failed on them)" if result.kept else ""))
    if result.analyses:  # the new label mix, then each analysis's table, as `deception run` prints them

        click.echo(f"\n{label_table(result.dataset)}")
    for name, analysis in result.analyses.items():
        click.echo(f"\n[{name}]\n{analysis.table}")

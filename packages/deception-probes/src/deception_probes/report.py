"""The compact console table of the probe results (the run summary's headline)."""

from __future__ import annotations

from typing import Any


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _auroc(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "n/a"
    if metric.get("ci_low") is None:
        return f"{metric['value']:.2f} [n/a]"
    return f"{metric['value']:.2f} [{metric['ci_low']:.2f},{metric['ci_high']:.2f}]"


def _recall(metric: dict[str, Any] | None) -> str:
    return "n/a" if metric is None else f"{metric['value']:.2f}"


def _p(permutation: dict[str, Any] | None) -> str:
    """A p-value with the number of permutations and the floor 1 / (1 + n) beside it."""
    if permutation is None:
        return "n/a"
    if permutation.get("p_value") is None:
        return "not testable"
    return f"{permutation['p_value']:.3f} (n={permutation['n_permutations']}, floor {permutation['p_floor']:.3f})"


def headline_table(results: dict[str, Any]) -> str:
    lines = [_labelled_line(results["labelled"])]
    if results["status"] != "ok":
        lines += [f"no probe: {reason}" for reason in results["reasons"]]
        return "\n".join(lines)
    for section in (_method_lines, _cell_table, _best_lines, _judge_lines, _confound_lines, _generalisation_lines,
                    _sae_lines):
        lines += section(results)
    return "\n".join(lines)


def _labelled_line(lab: dict[str, Any]) -> str:
    return (f"labelled samples: {lab['honest']} honest, {lab['deceptive']} deceptive in {lab.get('trials', 0)} "
            f"trials; {lab['ambiguous_excluded']} ambiguous excluded from training")


def _method_lines(results: dict[str, Any]) -> list[str]:
    """How the figures were computed: the folds, notes, and the permutation scheme."""
    splits = results["splits"]
    lines = [f"grouped {splits['n_folds']}-fold CV by trial; selection on validation folds; figures on held-out folds"]
    lines += [f"note: {reason}" for reason in results["reasons"]]
    scheme = results.get("permutation_scheme") or {}
    if scheme.get("level"):
        lines.append(f"permutations: {scheme['level']} ({scheme.get('assumption')}); a p-value at its floor means p <= floor")
    elif scheme.get("reason"):
        lines.append(f"permutation test: {scheme['reason']}")
    return lines


def _cell_table(results: dict[str, Any]) -> list[str]:
    """One row per layer x position with a logistic probe, and the legend of the columns."""
    fpr = int(round(results["settings"]["fpr"] * 100))
    header = (f"{'layer':>5} {'position':<12} {'logistic AUROC [95% CI]':<24} {'bal.acc':>7} {f'rec@{fpr}%FPR':>10} "
              f"{'perm p':<26} {'mass-mean':>9} {'lat':>6}")
    lines = [header, "-" * len(header)]
    by_key = {(c["layer"], c["position"], c["method"]): c for c in results["cells"]}
    for layer in results["dataset"]["layers"]:
        for position in results["dataset"]["positions"]:
            lr = by_key.get((layer, position, "logistic"))
            if lr is not None:
                lines.append(_cell_row(layer, position, lr, by_key.get((layer, position, "mass_mean")),
                                       by_key.get((layer, position, "lat"))))
    lines.append(
        "columns: AUROC on held-out folds with its 95% interval (trials resampled); bal.acc = balanced accuracy "
        "calling a decision value above 0 deceptive;\n"
        f"rec@{fpr}%FPR = share of deceptive replies caught when {fpr}% of honest ones are flagged; "
        "perm p = label-permutation p-value; mass-mean, lat = AUROC of those two probes"
    )
    return lines


def _cell_row(layer: int, position: str, lr: dict[str, Any], mm: dict[str, Any] | None,
              lat: dict[str, Any] | None) -> str:
    return (f"{layer:>5} {position:<12} {_auroc(lr['auroc']):<24} {_num(lr['balanced_accuracy']):>7} "
            f"{_recall(lr['recall_at_fpr']):>10} {_p(lr['permutation']):<26} "
            f"{_num(mm['auroc']['value'] if mm and mm['auroc'] else None):>9} "
            f"{_num(lat['auroc']['value'] if lat and lat['auroc'] else None):>6}")


def _best_lines(results: dict[str, Any]) -> list[str]:
    """The probe chosen (and where it is saved), and each multi-layer probe."""
    best = results.get("best")
    nested = results.get("nested") or {}
    lines = []
    if best:
        lines.append(
            f"best probe: {best['method']} at layer {best['layer']} {best['position']} (chosen on {best['selected_on']}); "
            f"held-out AUROC {_num(best['auroc'])}, whole selection procedure (nested) {_auroc(nested.get('auroc'))}"
        )
        lines.append(f"saved: {best['file']}")
    for entry in results.get("multi_layer") or []:
        lines.append(f"multi-layer probe at {entry['position']} ({entry['combines']}): held-out AUROC "
                     f"{_auroc(entry['auroc'])}, mean validation AUROC {_num(entry['mean_validation_auroc'])}")
    return lines


def _judge_lines(results: dict[str, Any]) -> list[str]:
    judge = results.get("judge_baseline") or {}
    if not judge.get("judge_auroc"):
        return []
    diff = judge["difference"] or {}
    diff_text = ("n/a" if diff.get("ci_low") is None else
                 f"{diff['value']:+.2f} [{diff['ci_low']:+.2f},{diff['ci_high']:+.2f}]")
    return [f"judge as a detector ({judge['n_samples']} samples): AUROC {_auroc(judge['judge_auroc'])}; "
            f"best probe on the same samples {_auroc(judge['probe_auroc'])}; probe - judge {diff_text}"
            + (f" (circular: {judge['reason']})" if judge["status"] == "circular" else "")]


def _confound_lines(results: dict[str, Any]) -> list[str]:
    confounds = results.get("confounds") or {}
    if not confounds.get("fields"):
        return []
    parts = [f"{e['field']} {_auroc(e['auroc'])}" for e in confounds["fields"] if e["auroc"]]
    lines = ["labels separated by metadata alone (AUROC): " + ("; ".join(parts) if parts else "not computable")]
    if confounds.get("warning"):
        lines.append(f"warning: {confounds['warning']}")
    return lines


def _generalisation_lines(results: dict[str, Any]) -> list[str]:
    """Transfer between groups (off-diagonal cells) and leave-one-scenario-out."""
    gen = results.get("generalisation") or {}
    lines = []
    for name, matrix in (gen.get("transfer") or {}).items():
        parts = [f"{cell['train']}->{cell['test']} " + (_auroc(cell["auroc"]) if cell["auroc"] else "not computable")
                 for cell in matrix["cells"] if cell["train"] != cell["test"]]
        lines.append(f"transfer ({name}): " + "; ".join(parts))
    loso = gen.get("leave_one_scenario_out") or {}
    if loso:
        mean = loso.get("mean_auroc")
        text = f"mean AUROC {_num(mean)}" if mean is not None else f"not computable ({loso.get('reason')})"
        lines.append(f"leave-one-scenario-out: {text}")
    return lines


def _sae_lines(results: dict[str, Any]) -> list[str]:
    sae = results.get("sae") or {}
    lines = []
    for entry in sae.get("positions", []):
        top = ", ".join(str(f["index"]) for f in entry.get("top_features", [])[:5]) or "none"
        lines.append(f"SAE {entry['position']}: AUROC {_auroc(entry['auroc'])}; top deception features {top}")
    return lines

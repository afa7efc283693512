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
    return "n/a" if permutation is None else f"{permutation['p_value']:.3f}"


def headline_table(results: dict[str, Any]) -> str:
    lab = results["labelled"]
    lines = [
        f"labelled samples: {lab['honest']} honest, {lab['deceptive']} deceptive in {lab.get('trials', 0)} trials; "
        f"{lab['ambiguous_excluded']} ambiguous excluded from training",
    ]
    if results["status"] != "ok":
        lines += [f"no probe: {reason}" for reason in results["reasons"]]
        return "\n".join(lines)
    splits = results["splits"]
    lines.append(f"grouped {splits['n_folds']}-fold CV by trial; selection on validation folds; figures on held-out folds")
    lines += [f"note: {reason}" for reason in results["reasons"]]
    fpr = int(round(results["settings"]["fpr"] * 100))
    header = (f"{'layer':>5} {'position':<12} {'logistic AUROC [95% CI]':<24} {'bal.acc':>7} {f'rec@{fpr}%FPR':>10} "
              f"{'perm p':>7} {'mass-mean':>9} {'lat':>6}")
    lines += [header, "-" * len(header)]
    by_key = {(c["layer"], c["position"], c["method"]): c for c in results["cells"]}
    for layer in results["dataset"]["layers"]:
        for position in results["dataset"]["positions"]:
            lr = by_key.get((layer, position, "logistic"))
            mm = by_key.get((layer, position, "mass_mean"))
            lat = by_key.get((layer, position, "lat"))
            if lr is None:
                continue
            lines.append(
                f"{layer:>5} {position:<12} {_auroc(lr['auroc']):<24} {_num(lr['balanced_accuracy']):>7} "
                f"{_recall(lr['recall_at_fpr']):>10} {_p(lr['permutation']):>7} "
                f"{_num(mm['auroc']['value'] if mm and mm['auroc'] else None):>9} "
                f"{_num(lat['auroc']['value'] if lat and lat['auroc'] else None):>6}"
            )
    lines.append(
        "columns: AUROC on held-out folds with its 95% interval (trials resampled); bal.acc = balanced accuracy "
        "calling a decision value above 0 deceptive;\n"
        f"rec@{fpr}%FPR = share of deceptive replies caught when {fpr}% of honest ones are flagged; "
        "perm p = label-permutation p-value; mass-mean, lat = AUROC of those two probes"
    )
    best = results.get("best")
    nested = results.get("nested") or {}
    if best:
        lines.append(
            f"best probe: {best['method']} at layer {best['layer']} {best['position']} (chosen on {best['selected_on']}); "
            f"held-out AUROC {_num(best['auroc'])}, whole selection procedure (nested) {_auroc(nested.get('auroc'))}"
        )
        lines.append(f"saved: {best['file']}")
    confounds = results.get("confounds") or {}
    if confounds.get("fields"):
        parts = [f"{e['field']} {_auroc(e['auroc'])}" for e in confounds["fields"] if e["auroc"]]
        lines.append("labels separated by metadata alone (AUROC): " + ("; ".join(parts) if parts else "not computable"))
        if confounds.get("warning"):
            lines.append(f"warning: {confounds['warning']}")
    gen = results.get("generalisation") or {}
    for name, matrix in (gen.get("transfer") or {}).items():
        parts = []
        for cell in matrix["cells"]:
            if cell["train"] != cell["test"]:
                value = _auroc(cell["auroc"]) if cell["auroc"] else "not computable"
                parts.append(f"{cell['train']}->{cell['test']} {value}")
        lines.append(f"transfer ({name}): " + "; ".join(parts))
    loso = gen.get("leave_one_scenario_out") or {}
    if loso:
        mean = loso.get("mean_auroc")
        text = f"mean AUROC {_num(mean)}" if mean is not None else f"not computable ({loso.get('reason')})"
        lines.append(f"leave-one-scenario-out: {text}")
    sae = results.get("sae") or {}
    for entry in sae.get("positions", []):
        top = ", ".join(str(f["index"]) for f in entry.get("top_features", [])[:5]) or "none"
        lines.append(f"SAE {entry['position']}: AUROC {_auroc(entry['auroc'])}; top deception features {top}")
    return "\n".join(lines)

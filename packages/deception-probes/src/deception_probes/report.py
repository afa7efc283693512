"""The compact console table of the probe results (the run summary's headline)."""

from __future__ import annotations

from collections.abc import Mapping

from deception_core import JSONValue, json_array, json_number, json_object
from deception_probes import informative

#: the probe results document (``probes/results.json``) or one of its nested records, as read from JSON
Record = Mapping[str, JSONValue]


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _number(value: JSONValue) -> float | None:
    """A number the document may leave null."""
    return None if value is None else json_number(value)


def _auroc(metric: JSONValue) -> str:
    if metric is None:
        return "n/a"
    metric = json_object(metric)
    if metric.get("ci_low") is None:
        return f"{json_number(metric['value']):.2f} [n/a]"
    return (f"{json_number(metric['value']):.2f} "
            f"[{json_number(metric['ci_low']):.2f},{json_number(metric['ci_high']):.2f}]")


def _recall(metric: JSONValue) -> str:
    return "n/a" if metric is None else f"{json_number(json_object(metric)['value']):.2f}"


def _p(permutation: JSONValue) -> str:
    """A p-value with the number of permutations and the floor 1 / (1 + n) beside it."""
    if permutation is None:
        return "n/a"
    permutation = json_object(permutation)
    if permutation.get("p_value") is None:
        return "not testable"
    return (f"{json_number(permutation['p_value']):.3f} (n={permutation['n_permutations']}, "
            f"floor {json_number(permutation['p_floor']):.3f})")


def headline_table(results: Record) -> str:
    lines = [_labelled_line(json_object(results["labelled"]))]
    if results["status"] != "ok":
        lines += [f"no probe: {reason}" for reason in json_array(results["reasons"])]
        return "\n".join(lines)
    for section in (_method_lines, _cell_table, _best_lines, _judge_lines, _confound_lines, _lexical_lines,
                    _generalisation_lines, _sae_lines):
        lines += section(results)
    return "\n".join(lines)


def _labelled_line(lab: Record) -> str:
    return (f"labelled samples: {lab['honest']} honest, {lab['deceptive']} deceptive in {lab.get('trials', 0)} "
            f"trials; {lab['ambiguous_excluded']} ambiguous excluded from training")


def _method_lines(results: Record) -> list[str]:
    """How the figures were computed: the folds, notes, and the permutation scheme."""
    splits = json_object(results["splits"])
    lines = [f"grouped {splits['n_folds']}-fold CV by trial; selection on validation folds; figures on held-out folds"]
    lines += [f"note: {reason}" for reason in json_array(results["reasons"])]
    lines += informative.table_lines([json_object(e) for e in json_array(results.get("not_informative") or [])])
    scheme = json_object(results.get("permutation_scheme") or {})
    if scheme.get("level"):
        lines.append(f"permutations: {scheme['level']} ({scheme.get('assumption')}); a p-value at its floor means p <= floor")
    elif scheme.get("reason"):
        lines.append(f"permutation test: {scheme['reason']}")
    return lines


def _cell_table(results: Record) -> list[str]:
    """One row per layer x position with a logistic probe, and the legend of the columns."""
    fpr = int(round(json_number(json_object(results["settings"])["fpr"]) * 100))
    header = (f"{'layer':>5} {'position':<12} {'logistic AUROC [95% CI]':<24} {'bal.acc':>7} {f'rec@{fpr}%FPR':>10} "
              f"{'perm p':<26} {'mass-mean':>9} {'lat':>6}")
    lines = [header, "-" * len(header)]
    cells = [json_object(c) for c in json_array(results["cells"])]
    by_key = {(c["layer"], c["position"], c["method"]): c for c in cells}
    dataset = json_object(results["dataset"])
    for layer in json_array(dataset["layers"]):
        for position in json_array(dataset["positions"]):
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


def _other_auroc(cell: Record | None) -> float | None:
    """The AUROC value of a mass-mean or LAT cell beside the logistic one, if it has one."""
    return json_number(json_object(cell["auroc"])["value"]) if cell and cell["auroc"] else None


def _cell_row(layer: JSONValue, position: JSONValue, lr: Record, mm: Record | None, lat: Record | None) -> str:
    return (f"{layer:>5} {position:<12} {_auroc(lr['auroc']):<24} {_num(_number(lr['balanced_accuracy'])):>7} "
            f"{_recall(lr['recall_at_fpr']):>10} {_p(lr['permutation']):<26} "
            f"{_num(_other_auroc(mm)):>9} "
            f"{_num(_other_auroc(lat)):>6}")


def _best_lines(results: Record) -> list[str]:
    """The probe chosen (and where it is saved), and each multi-layer probe."""
    best = results.get("best")
    nested = json_object(results.get("nested") or {})
    lines = []
    if best:
        best = json_object(best)
        lines.append(
            f"best probe: {best['method']} at layer {best['layer']} {best['position']} (chosen on {best['selected_on']}); "
            f"held-out AUROC {_num(_number(best['auroc']))}, whole selection procedure (nested) {_auroc(nested.get('auroc'))}"
        )
        lines.append(f"saved: {best['file']}")
    for item in json_array(results.get("multi_layer") or []):
        entry = json_object(item)
        lines.append(f"multi-layer probe at {entry['position']} ({entry['combines']}): held-out AUROC "
                     f"{_auroc(entry['auroc'])}, mean validation AUROC {_num(_number(entry['mean_validation_auroc']))}")
    return lines


def _judge_lines(results: Record) -> list[str]:
    judge = json_object(results.get("judge_baseline") or {})
    if not judge.get("judge_auroc"):
        return []
    diff = json_object(judge["difference"] or {})
    diff_text = ("n/a" if diff.get("ci_low") is None else
                 f"{json_number(diff['value']):+.2f} "
                 f"[{json_number(diff['ci_low']):+.2f},{json_number(diff['ci_high']):+.2f}]")
    return [f"judge as a detector ({judge['n_samples']} samples): AUROC {_auroc(judge['judge_auroc'])}; "
            f"best probe on the same samples {_auroc(judge['probe_auroc'])}; probe - judge {diff_text}"
            + (f" (circular: {judge['reason']})" if judge["status"] == "circular" else "")]


def _confound_lines(results: Record) -> list[str]:
    confounds = json_object(results.get("confounds") or {})
    if not confounds.get("fields"):
        return []
    entries = [json_object(e) for e in json_array(confounds["fields"])]
    parts = [f"{e['field']} {_auroc(e['auroc'])}" for e in entries if e["auroc"]]
    lines = ["labels separated by metadata alone (AUROC): " + ("; ".join(parts) if parts else "not computable")]
    if confounds.get("warning"):
        lines.append(f"warning: {confounds['warning']}")
    return lines


def _lexical_lines(results: Record) -> list[str]:
    """The lexical baseline beside the metadata one: the words alone, on the probes' folds."""
    lexical = json_object(results.get("lexical_baseline") or {})
    if not lexical:
        return []
    if lexical["status"] != "ok":
        return [f"labels separated by the words alone (bag of words + logistic regression): not computable ({lexical['reason']})"]
    line = (f"labels separated by the words alone (bag of words + logistic regression, same folds): AUROC "
            f"{_auroc(lexical['auroc'])}")
    diff = lexical.get("difference")
    if diff:
        diff = json_object(diff)
        interval = ("" if diff.get("ci_low") is None else
                    f" [{json_number(diff['ci_low']):+.2f},{json_number(diff['ci_high']):+.2f}]")
        line += (f"; best probe on the same samples {_auroc(lexical['probe_auroc'])}; probe - words "
                 f"{json_number(diff['value']):+.2f}{interval}")
    lines = [line]
    if lexical.get("warning"):
        lines.append(f"warning: {lexical['warning']}")
    return lines


def _generalisation_lines(results: Record) -> list[str]:
    """Transfer between groups (off-diagonal cells) and leave-one-scenario-out."""
    gen = json_object(results.get("generalisation") or {})
    lines = []
    for name, matrix in json_object(gen.get("transfer") or {}).items():
        cells = [json_object(c) for c in json_array(json_object(matrix)["cells"])]
        parts = [f"{cell['train']}->{cell['test']} " + (_auroc(cell["auroc"]) if cell["auroc"] else "not computable")
                 for cell in cells if cell["train"] != cell["test"]]
        lines.append(f"transfer ({name}): " + "; ".join(parts))
    loso = json_object(gen.get("leave_one_scenario_out") or {})
    if loso:
        mean = loso.get("mean_auroc")
        text = f"mean AUROC {_num(json_number(mean))}" if mean is not None else f"not computable ({loso.get('reason')})"
        lines.append(f"leave-one-scenario-out: {text}")
    return lines


def _sae_lines(results: Record) -> list[str]:
    sae = json_object(results.get("sae") or {})
    lines = []
    for item in json_array(sae.get("positions", [])):
        entry = json_object(item)
        features = json_array(entry.get("top_features", []))[:5]
        top = ", ".join(str(json_object(f)["index"]) for f in features) or "none"
        lines.append(f"SAE {entry['position']}: AUROC {_auroc(entry['auroc'])}; top deception features {top}")
    return lines

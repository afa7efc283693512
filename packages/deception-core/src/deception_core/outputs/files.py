"""Files a run writes besides the dataset, logging, the progress bar and the summary table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from deception_core.config.resolved import RESULT_FIELDS as RESULT_FIELDS  # defined with the run's identity
from deception_core.store.dataset import REPLY_ALL, Dataset
from deception_core.ui.progress import ProgressBar
from deception_core.ui.progress import progress_bar as bar


def write_torch_export(out_dir: Path, mode: str, dataset: Dataset) -> Path:
    """``activations_<mode>.pt``: tensors and plain containers only (``weights_only=True`` loads it)."""
    import torch

    activations: dict[int, dict[str, torch.Tensor]] = {}
    for layer in dataset.layers:
        activations[layer] = {p: torch.from_numpy(dataset.matrix(layer, p).copy()) for p in dataset.positions}
    keep = ("sample_id", "trial_key", "scenario", "mode", "condition", "round", "rule_label", "judge_label",
            "agreement", "label", "reply_text", "n_reply_tokens")
    payload = {
        "activations": activations,
        "labels": {
            "label": dataset.column("label"),
            "rule_label": dataset.column("rule_label"),
            "judge_label": dataset.column("judge_label"),
            "scenario": dataset.column("scenario"),
            "condition": dataset.column("condition"),
            "mode": dataset.column("mode"),
        },
        "metadata": [{k: getattr(s, k) for k in keep} for s in dataset.samples],
        "config": {"model": dataset.meta.model["id"], "layers": dataset.layers,
                   "positions": dataset.positions, "n_samples": len(dataset),
                   "has_reply_tokens": any(k.endswith(REPLY_ALL) for k in dataset.arrays)},
    }
    path = out_dir / f"activations_{mode}.pt"
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def progress_bar(total: int, initial: int) -> ProgressBar:
    """A bar over trials with counts and ETA (on stderr)."""

    return bar(total, "trials", "trial", initial)


LABEL_TABLE_LEGEND = (
    "samples = focal utterances (captured replies); honest/decept/ambig = final labels under the label policy;\n"
    "agree = share of utterances where the LLM judge's verdict equals the scenario rule's label (n/a: no judge, or no rule label)"
)


def label_table(dataset: Dataset) -> str:
    """Samples per scenario x mode x condition: honest, deceptive, ambiguous, rule-judge agreement."""
    rows: dict[tuple[str, str, str], Counter[str]] = {}
    agree: dict[tuple[str, str, str], list[bool]] = {}
    for s in dataset.samples:
        key = (s.scenario, s.mode, s.condition)
        rows.setdefault(key, Counter())[s.label] += 1
        if s.agreement is not None:
            agree.setdefault(key, []).append(bool(s.agreement))
    header = (f"{'scenario':<18} {'mode':<10} {'condition':<22} {'samples':>7} {'honest':>6} {'decept':>6} "
              f"{'ambig':>6} {'agree':>6}")
    lines = [header, "-" * len(header)]
    for key in sorted(rows):
        c = rows[key]
        votes = agree.get(key, [])
        rate = f"{sum(votes) / len(votes):.2f}" if votes else "n/a"
        lines.append(f"{key[0]:<18} {key[1]:<10} {key[2]:<22} {sum(c.values()):>7} {c['honest']:>6} "
                     f"{c['deceptive']:>6} {c['ambiguous']:>6} {rate:>6}")
    lines.append(LABEL_TABLE_LEGEND)
    return "\n".join(lines)


def human_size(n_bytes: int) -> str:
    """``532 B``, ``41.2 kB``, ``3.4 MB``, ``1.20 GB``."""
    if n_bytes < 1000:
        return f"{n_bytes} B"
    if n_bytes < 1e6:
        return f"{n_bytes / 1e3:.1f} kB"
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes < 1e9 else f"{n_bytes / 1e9:.2f} GB"



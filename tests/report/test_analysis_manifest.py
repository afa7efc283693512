"""The report finds an analysis's files through `analyses.json`, by role, never by an analysis's name."""

from __future__ import annotations

import json
import shutil

from deception_core.base.records import ANALYSES_MANIFEST
from deception_core.report.inputs import analysis_output, read_scores


def test_scores_are_found_by_role_under_any_file_name(synthetic_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    (run / "synthetic_scores.parquet").rename(run / "renamed.parquet")
    manifest = json.loads((run / ANALYSES_MANIFEST).read_text())
    manifest["analyses"]["synthetic"]["outputs"]["scores"] = "renamed.parquet"
    manifest["sha256"]["renamed.parquet"] = manifest["sha256"].pop("synthetic_scores.parquet")
    (run / ANALYSES_MANIFEST).write_text(json.dumps(manifest))
    assert len(read_scores(run)) == len(read_scores(synthetic_run))


def test_without_a_manifest_no_file_is_guessed(synthetic_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    (run / ANALYSES_MANIFEST).unlink()
    assert analysis_output(run, "scores") is None


def test_the_probes_analysis_records_its_files_by_role() -> None:
    from deception_probes.analysis import output_roles

    roles = output_roles({"scores": {"files": ["probe_scores.parquet"]}})
    assert roles == {"results": "probe_results.json", "scores": "probe_scores.parquet"}

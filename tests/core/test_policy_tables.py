"""Truth tables of the output-folder policy and of checkpoint identity, written out by hand.

Output policy: which folders a run may use (new, resume, overwrite) and which it refuses (exit 2).
Checkpoint identity: which settings give a trial a different area (they change what it produces) and
which do not (where the results go, how fast, how verbose).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from deception_core import RunConfig
from deception_core.base.errors import UsageError
from deception_core.checkpoints.checkpoint import CheckpointMismatch, area_for, area_name, identity_hash
from deception_core.config.resolved import ResolvedRun
from deception_core.outputs import policy


def config(out: Path, **changes) -> RunConfig:
    settings = {"model": "tiny", "scenario_names": ["ultimatum_bluff"], "output": str(out), **changes}
    return RunConfig(**settings)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


SAVED = json.dumps({"config": config(Path("out")).to_dict()})  # what the run itself saved
MARKER = json.dumps({"format": "deception-output", "version": 1, "command": "run"})  # deception-run.json
OTHER_SEED = json.dumps({"config": config(Path("out"), seed=7).to_dict()})

# folder contents (None: the folder does not exist), --overwrite -> "new" / "resume" / "overwrite" or the
# refusal's distinctive words
OUTPUT_TABLE = [
    ("absent", None, False, "new"),
    ("empty", {}, False, "new"),
    ("empty, overwrite", {}, True, "new"),
    ("unfinished run", {"run.log": "", "config.json": SAVED, "deception-run.json": MARKER}, False, "resume"),
    ("unfinished run, no config", {"run.log": "", "checkpoint/x": ""}, False, "resume"),
    ("unfinished, dead staging left", {"config.json": SAVED, ".dataset.staging-123-abc": ""}, False, "resume"),
    ("unfinished run, other seed", {"config.json": OTHER_SEED}, False, "different settings (seed)"),
    ("unfinished run, torn config", {"config.json": "{"}, False, "is not empty"),
    ("unfinished run, config without settings", {"config.json": "{}"}, False, "different settings (dtype, evaluator"),
    ("finished run", {"config.json": SAVED, "dataset/meta.json": "{}", "deception-run.json": MARKER}, False,
     "is not empty"),
    ("finished run, overwrite", {"config.json": SAVED, "dataset/meta.json": "{}", "deception-run.json": MARKER}, True,
     "overwrite"),
    ("merge folder, overwrite", {"merge.json": "{}", "deception-run.json": MARKER}, True, "overwrite"),
    ("run of an earlier version, overwrite", {"config.json": SAVED, "dataset/meta.json": "{}"}, True,
     "not a deception run folder this version marked as its own"),
    ("a model folder, overwrite", {"config.json": "{}", "model.safetensors": ""}, True,
     "not a deception run folder this version marked as its own"),
    ("someone's files", {"notes.txt": "x"}, False, "is not empty"),
    ("someone's files, overwrite", {"notes.txt": "x"}, True, "is not a deception run folder"),
    ("a run plus someone's file", {"config.json": SAVED, "notes.txt": "x"}, False, "is not empty"),
]


@pytest.mark.parametrize(("case", "files", "overwrite", "expected"), OUTPUT_TABLE, ids=[c[0] for c in OUTPUT_TABLE])
def test_output_folder_policy(tmp_path, case, files, overwrite, expected) -> None:
    out = tmp_path / "out"
    if files is not None:
        out.mkdir()
        write(out, files)
    cfg = config(out, overwrite=overwrite)
    if expected in ("new", "resume", "overwrite"):
        assert policy.check_output(cfg) == expected
    else:
        with pytest.raises(UsageError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            policy.check_output(cfg)


def test_an_output_that_is_a_file_is_refused_naming_the_flag(tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UsageError, match=r"^--where .* is a file; pass a folder"):
        policy.check_output(config(target), flag="--where")


@pytest.mark.parametrize(("n", "listed"), [
    (6, "f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, f5.txt)"),
    (7, "f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, f5.txt and 1 more)"),
    (8, "f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, f5.txt and 2 more)"),
])
def test_refusal_lists_at_most_six_entries(tmp_path, n, listed) -> None:
    out = write(tmp_path / "out", {f"f{i}.txt": "" for i in range(n)})
    with pytest.raises(UsageError) as raised:
        policy.check_output(config(out))
    assert str(raised.value) == (f"--output {out} is not empty (it holds {listed}; a run never replaces an earlier one. "
                                 "Pass a new --output, or --overwrite to delete the earlier run there")


@pytest.mark.parametrize(("where", "relation"), [("out", "is"), ("out/model", "contains")])
def test_overwrite_refuses_a_run_folder_that_is_or_holds_an_input(tmp_path, where, relation) -> None:
    out = write(tmp_path / "out", {"deception-run.json": MARKER, "config.json": SAVED})
    source = tmp_path / where
    with pytest.raises(UsageError) as raised:
        policy.check_output(config(out, overwrite=True), inputs=[("the model", source)])
    assert str(raised.value) == (f"--output {out} {relation} the model {source}, which this command reads; an output "
                                 "folder never replaces an input. Pass another --output")
    assert policy.check_output(config(out, overwrite=True), inputs=[("the model", tmp_path / "elsewhere")]) == "overwrite"


def test_refusal_messages_name_the_flag_and_the_fix(tmp_path) -> None:
    out = write(tmp_path / "out", {"notes.txt": ""})
    with pytest.raises(UsageError) as raised:
        policy.check_output(config(out, overwrite=True))
    assert str(raised.value) == (f"--output {out} is not empty and is not a deception run folder (no deception-run.json); "
                                 "--overwrite only replaces run folders. Pass a new or empty --output")
    other = write(tmp_path / "other", {"config.json": OTHER_SEED})
    with pytest.raises(UsageError) as raised:
        policy.check_output(config(other))
    assert str(raised.value) == (f"--output {other} holds an unfinished run with different settings (seed); re-run "
                                 "with that run's settings to resume it, pass a new --output, or --overwrite to delete it")
    changed = write(tmp_path / "changed", {"config.json": json.dumps({"config": config(Path("o"), seed=7, top_p=0.5).to_dict()})})
    with pytest.raises(UsageError, match=r"different settings \(seed, top_p\);"):
        policy.check_output(config(changed))


@pytest.mark.parametrize(("name", "staging"), [
    (".dataset.staging-12-ab", True), (".x.tmp-3-cd", True), (".dataset.old-4-ef", True),
    ("dataset.staging-12-ab", False), (".hidden", False), (".staging", False), ("run.log", False),
])
def test_staging_names(name, staging) -> None:
    assert policy._is_staging(name) is staging


@pytest.mark.parametrize(("files", "marked"), [
    ({"deception-run.json": MARKER}, True),
    ({"deception-run.json": json.dumps({"format": "other"})}, False), ({"deception-run.json": "{"}, False),
    ({"deception-run.json": "[]"}, False), ({"config.json": "{}"}, False), ({"dataset/meta.json": "{}"}, False),
    ({"merge.json": "{}"}, False), ({"checkpoint/manifest.json": "{}"}, False), ({"run.log": ""}, False),
])
def test_run_folders_are_known_by_their_marker_alone(tmp_path, files, marked) -> None:
    assert policy.is_run_folder(write(tmp_path / "out", files)) is marked


def test_a_linked_marker_or_folder_does_not_mark(tmp_path) -> None:
    real = write(tmp_path / "real", {"deception-run.json": MARKER})
    linked_marker = tmp_path / "linked-marker"
    linked_marker.mkdir()
    (linked_marker / "deception-run.json").symlink_to(real / "deception-run.json")
    (tmp_path / "linked-folder").symlink_to(real, target_is_directory=True)
    assert policy.is_run_folder(real) is True
    assert policy.is_run_folder(linked_marker) is False
    assert policy.is_run_folder(tmp_path / "linked-folder") is False


def test_only_the_staging_of_a_dead_process_is_removed(tmp_path) -> None:
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    alive = write(tmp_path, {f".dataset.staging-{os.getpid()}-ab": "", f".dataset.staging-{dead_pid}-cd": "",
                             f".dataset.tmp-{dead_pid}-ef/part": "", ".dataset.staging-x-ab": "", "keep.txt": ""})
    removed = policy.remove_dead_staging(alive)
    assert sorted(p.name for p in removed) == [f".dataset.staging-{dead_pid}-cd", f".dataset.tmp-{dead_pid}-ef"]
    assert sorted(p.name for p in alive.iterdir()) == sorted(
        [f".dataset.staging-{os.getpid()}-ab", ".dataset.staging-x-ab", "keep.txt"])


def test_a_dead_process_staging_with_dashes_in_its_name_is_removed_but_not_a_link(tmp_path) -> None:
    dead_pid = 2**22 + 12346
    target = write(tmp_path / "target", {"keep.txt": ""})
    folder = write(tmp_path / "run", {f".my-data.staging-{dead_pid}-ab": ""})
    (folder / f".link.staging-{dead_pid}-cd").symlink_to(target, target_is_directory=True)
    removed = policy.remove_dead_staging(folder)
    assert [p.name for p in removed] == [f".my-data.staging-{dead_pid}-ab"]
    assert (folder / f".link.staging-{dead_pid}-cd").is_symlink()
    assert (target / "keep.txt").exists()


def test_entries_left_alone_do_not_stop_the_clean_up(tmp_path) -> None:
    """Entries that stay (a live process's staging, a name without a pid, a link) come first here: the
    dead process's staging after them is still removed."""
    dead_pid = 2**22 + 12347
    folder = write(tmp_path / "run", {f".a.staging-{os.getpid()}-ab": "", ".b.staging-x-ab": "",
                                      f".d.staging-{dead_pid}-ab": ""})
    (folder / f".c.staging-{dead_pid}-cd").symlink_to(tmp_path, target_is_directory=True)

    class InNameOrder(type(folder)):  # type: ignore[misc]
        def iterdir(self):
            return iter(sorted(super().iterdir(), key=lambda p: p.name))

    removed = policy.remove_dead_staging(InNameOrder(folder))
    assert [p.name for p in removed] == [f".d.staging-{dead_pid}-ab"]


def test_overwrite_clears_the_folder_without_following_links(tmp_path) -> None:
    outside = write(tmp_path / "outside", {"precious.txt": "x"})
    out = write(tmp_path / "out", {"config.json": "{}", "dataset/meta.json": "{}"})
    (out / "link").symlink_to(outside, target_is_directory=True)
    policy.clear_for_overwrite(out)
    assert list(out.iterdir()) == []
    assert (outside / "precious.txt").read_text() == "x"


@pytest.mark.parametrize(("code", "is_write", "hint"), [
    (errno.ENOSPC, True, "free some space"), (errno.EDQUOT, True, "free some space (the disk quota is used up)"),
    (errno.EROFS, True, "choose a writable folder"), (errno.EACCES, True, "fix the folder's permissions"),
    (errno.EPERM, True, "fix the folder's permissions"), (errno.EIO, True, "fix the cause"),
    (errno.EFBIG, True, "fix the cause"), (errno.ENOENT, False, "fix the cause"), (errno.EINVAL, False, "fix the cause"),
])
def test_write_errors_and_their_hints(code, is_write, hint) -> None:
    error = OSError(code, os.strerror(code), "/x/y")
    assert policy.is_write_error(error) is is_write
    assert policy.describe_os_error(error) == f"writing /x/y failed: {os.strerror(code)}; {hint}"


def test_an_os_error_without_a_file_name_or_errno() -> None:
    assert policy.describe_os_error(OSError(errno.ENOSPC, "No space left")) == (
        "writing failed: No space left; free some space")
    assert policy.describe_os_error(OSError("odd")) == "writing failed: odd; fix the cause"
    assert policy.is_write_error(OSError("odd")) is False


# ------------------------------------------------------------------------------------ checkpoint identity

def run_identity(cfg: RunConfig, layers: list[int], backend: str) -> dict:
    return ResolvedRun(config=cfg, layers=layers, capture_backend=backend).identity


def identity(tmp_path: Path, **changes) -> dict:
    return run_identity(config(tmp_path / "out", **changes), [1, 2], "hf")


@pytest.mark.parametrize("change", [
    {"model": "other"}, {"seed": 1}, {"temperature": 0.0}, {"top_p": 0.5}, {"max_rounds": 1}, {"max_tokens": 9},
    {"fast": True}, {"mode": "instructed"}, {"label_policy": "rule"}, {"evaluator": "together"}, {"dtype": "float16"},
    {"positions": ["last_prompt"]}, {"self_report": True},
])
def test_settings_that_change_a_trial_change_its_area(tmp_path, change) -> None:
    assert area_name(identity(tmp_path, **change)) != area_name(identity(tmp_path))


@pytest.mark.parametrize("change", [
    {"output": "/elsewhere"}, {"verbose": True}, {"trials": 9}, {"batch_size": "4"}, {"analyze": False},
    {"report": False}, {"overwrite": True}, {"jobs": 1}, {"scenario_names": ["hidden_value"]},
])
def test_settings_that_do_not_change_a_trial_keep_its_area(tmp_path, change) -> None:
    assert identity(tmp_path, **change) == identity(tmp_path)


def test_the_judge_and_its_settings_are_part_of_the_identity(tmp_path) -> None:
    base = identity(tmp_path)
    assert base["judge"] == {"name": "local"}
    assert "component_settings" in base
    assert base["component_settings"] == {}
    tuned = identity(tmp_path, components={"evaluator": {"local": {"opening": "Judge: "}}})
    assert tuned["judge"] == {"name": "local", "opening": "Judge: "}
    assert area_name(tuned) != area_name(base)


@pytest.mark.parametrize(("kind", "settings", "changes"), [
    ("scenario", {"ultimatum_bluff": {"max_price": 90}}, True),
    ("capture_backend", {"hf": {"stop_at_newline": True}}, True),
    ("analysis", {"probes": {"n_folds": 3}}, False),
])
def test_component_settings_that_change_a_trial_are_part_of_the_identity(tmp_path, kind, settings, changes) -> None:
    base = identity(tmp_path)
    other = identity(tmp_path, components={kind: settings})
    assert (other != base) is changes
    if changes:
        assert other["component_settings"] == {kind: settings}


def test_resolved_layers_and_backend_are_part_of_the_identity(tmp_path) -> None:
    cfg = config(tmp_path / "out")
    base = run_identity(cfg, [1, 2], "hf")
    assert base["resolved_layers"] == [1, 2]
    assert base["capture_backend"] == "hf"
    assert run_identity(cfg, [1, 3], "hf") != base
    assert run_identity(cfg, [1, 2], "hybrid") != base


@pytest.mark.parametrize(("model", "slug"), [
    ("google/gemma-2-9b-it", "gemma-2-9b-it"), ("embedded:gemma-3-270m", "gemma-3-270m"),
    ("/tmp/models/tiny llama/", "tiny-llama"), ("a" * 50, "a" * 40), ("///", "model"), ("..", "model"),
    ("Org/Model-X", "Model-X"), ("-x.", "x"), (".-x-.", "x"),
])
def test_area_name_is_the_model_slug_and_twelve_hex_digits(model, slug) -> None:
    ident = {"model": model, "seed": 0}
    name = area_name(ident)
    assert name == f"{slug}-{identity_hash(ident)[:12]}"


def test_identity_hash_is_the_sha256_of_the_sorted_json() -> None:
    import hashlib

    assert identity_hash({"b": 1, "a": [2]}) == hashlib.sha256(b'{"a": [2], "b": 1}').hexdigest()
    assert identity_hash({"p": Path("/x")}) == hashlib.sha256(b'{"p": "/x"}').hexdigest()  # other values as text


def test_an_identity_without_a_model_gets_the_slug_model() -> None:
    assert area_name({"seed": 0}) == f"model-{identity_hash({'seed': 0})[:12]}"


def test_area_for_uses_the_legacy_folder_only_for_the_same_identity(tmp_path) -> None:
    ident = {"model": "m", "seed": 0}
    write(tmp_path, {"manifest.json": json.dumps({"format": 1, "identity": ident})})
    assert area_for(tmp_path, ident) == tmp_path
    other = {"model": "m", "seed": 1}
    assert area_for(tmp_path, other) == tmp_path / area_name(other)
    assert area_for(tmp_path / "fresh", ident) == tmp_path / "fresh" / area_name(ident)


@pytest.mark.parametrize(("manifest", "fix"), [
    ("{", "the checkpoint is damaged. Delete {dir} or pass another --checkpoint-dir"),
    (json.dumps({"format": 2, "identity": {}}), "of format 1; pass another --checkpoint-dir or delete that directory"),
    (json.dumps({"format": 1}), "of format 1; pass another --checkpoint-dir or delete that directory"),
])
def test_a_damaged_legacy_manifest_is_refused(tmp_path, manifest, fix) -> None:
    write(tmp_path, {"manifest.json": manifest})
    with pytest.raises(CheckpointMismatch) as raised:
        area_for(tmp_path, {"model": "m"})
    assert str(raised.value).endswith(fix.format(dir=tmp_path))

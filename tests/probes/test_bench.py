"""The shipped benchmark runs end to end at a toy size and reports its time."""

from __future__ import annotations

from deception_probes.bench import main, synthetic_dataset


def test_bench_dataset_shape_and_labels():
    dataset = synthetic_dataset(400, 16)
    assert dataset.layers == [6, 12, 18]
    assert len(dataset.positions) == 3
    assert dataset.matrix(12, "reply_last").shape == (400, 16)
    labels = {s.label for s in dataset.samples}
    assert labels == {"honest", "deceptive", "ambiguous"}
    assert {s.mode for s in dataset.samples} == {"emergent", "instructed"}


def test_bench_main_reports_elapsed_time(capsys, tmp_path):
    main(["--samples", "240", "--width", "8", "--permutations", "5", "--jobs", "1", "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert "analysis of 240 samples x 3 layers x 3 positions at width 8, 5 permutations, jobs=1:" in out
    assert "logistic: " in out
    assert "s CPU" in out
    assert "LAT / logistic CPU per cell: median" in out
    assert (tmp_path / "probe_results.json").is_file()


def test_bench_compares_jobs_and_the_refitted_null(capsys, tmp_path):
    main(["--samples", "240", "--width", "8", "--layers", "2", "--positions", "1", "--permutations", "5",
          "--jobs", "2", "--compare-jobs", "--reference", "3"])
    out = capsys.readouterr().out
    assert "results identical: True" in out
    for method in ("logistic", "mass_mean", "lat"):
        assert f"null of one cell, {method}, 3 labellings: batched" in out


def test_the_paired_shape_is_one_honest_and_one_deceptive_sample_per_trial():
    dataset = synthetic_dataset(20, 8, layers=(0, 1), paired=True)
    labels = [s.label for s in dataset.samples]
    assert labels == ["honest", "deceptive"] * 10
    assert len({s.trial_key for s in dataset.samples}) == 10
    assert all(s.reply_text for s in dataset.samples)

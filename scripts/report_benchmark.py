"""Size and load time of the HTML report at the cloud guide's full size, in headless Chromium.

    .venv/bin/python scripts/report_benchmark.py                   # 6 scenarios x 2 modes x 2 conditions x 50 trials x 3 rounds
    .venv/bin/python scripts/report_benchmark.py --run-dir RUN     # an existing run folder instead
    .venv/bin/python scripts/report_benchmark.py --trials 5        # smaller synthetic run

The synthetic run (`deception_core.testing.report_fixture`) has every reply's per-token scores
(60 tokens a reply). Printed: the HTML's size, the time to write it, and in Chromium the time to
the load event, to the end of the page's script, and for one filter click (the median of
``--repeat`` loads), with the load time of a page holding the same bytes as plain text (no script)
as the baseline measured in the same run. Needs ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reply-tokens", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, default=None, help="Save a screenshot of the loaded report here.")
    args = parser.parse_args()

    from deception_core.report import write_report
    from deception_core.testing.browser import Browser
    from deception_core.testing.report_fixture import WordTokenizer, write_synthetic_run

    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        tokenizer = None
        run_dir = args.run_dir
        if run_dir is None:
            run_dir = write_synthetic_run(Path(tmp) / "run", trials=args.trials, rounds=args.rounds,
                                          reply_tokens=args.reply_tokens)
            tokenizer = WordTokenizer()
        started = time.perf_counter()
        path = write_report(run_dir, Path(tmp) / "report.html", tokenizer=tokenizer)
        write_seconds = time.perf_counter() - started
        baseline = Path(tmp) / "baseline.html"  # the same bytes as plain text, no script: the browser's floor
        text = path.read_text().replace("&", "&amp;").replace("<", "&lt;")
        baseline.write_text(f"<!DOCTYPE html><html><body><pre>{text}</pre></body></html>")
        loads, scripts, clicks, floors = [], [], [], []
        with Browser() as page:
            for _ in range(args.repeat):
                floors.append(page.open(baseline.as_uri()))
                loads.append(page.open(path.as_uri()))
                scripts.append(page.evaluate("window.reportReadyAt") / 1000)
                clicks.append(page.evaluate(
                    "(() => { const t = performance.now(); document.getElementById('f-mislabelled').click();"
                    " document.body.offsetHeight; return (performance.now() - t) / 1000; })()"))
            shown = page.evaluate("document.body.dataset.shownTrials")
            if args.screenshot:
                page.evaluate("document.getElementById('f-reset').click()")
                page.screenshot(args.screenshot)
        from deception_core.store import read_dataset

        dataset = read_dataset(run_dir)
        print(json.dumps({
            "samples": len(dataset), "trials": len(dataset.trials), "html_bytes": path.stat().st_size,
            "write_seconds": round(write_seconds, 2),
            "load_event_seconds": round(statistics.median(loads), 2),
            "baseline_plain_text_load_seconds": round(statistics.median(floors), 2),
            "load_ratio_to_baseline": round(statistics.median(loads) / statistics.median(floors), 2),
            "script_done_seconds": round(statistics.median(scripts), 2),
            "filter_click_seconds": round(statistics.median(clicks), 3),
            "trials_shown_after_mislabelled_filter": int(shown),
        }, indent=2))


if __name__ == "__main__":
    main()

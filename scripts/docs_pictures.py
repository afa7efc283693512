"""The pictures of the docs and the README, made from a real quick-start run (not drawn by hand).

    python scripts/docs_pictures.py quickstart_output      # writes docs/assets/quickstart/
    python scripts/docs_pictures.py --site site SHOTS_DIR  # screenshots of the built docs site

Copies the run's three probe plots, and takes a screenshot of the run's `report.html` with
headless Chromium (`CHROMIUM`, else `chromium` on the PATH), the way a reader's browser shows it.
With ``--site``: the home page, a tutorial and the public-API page of a site `nox -s docs` built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "assets" / "quickstart"
PLOTS = ("probe_auroc_by_layer.png", "probe_roc_best.png", "probe_transfer_matrix.png")


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("docs_pictures: no Chromium found; install Debian's chromium or set CHROMIUM")
    return found


def screenshot(page: Path, out: Path, size: str = "1280,900") -> None:
    """A PNG of ``page`` (a local HTML file) as headless Chromium renders it."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={out}",
                        "--virtual-time-budget=5000", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    if not out.is_file() or out.stat().st_size == 0:
        raise SystemExit(f"docs_pictures: Chromium wrote no screenshot of {page}")


SITE_PAGES = {"home": "index.html", "tutorial": "tutorials/python-research.html", "api": "reference/api.html"}


def site_shots(site: Path, out: Path) -> int:
    missing = [page for page in SITE_PAGES.values() if not (site / page).is_file()]
    if missing:
        print(f"docs_pictures: {site} lacks {', '.join(missing)}; build the site first (nox -s docs)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, page in SITE_PAGES.items():
        screenshot(site / page, out / f"{name}.png", size="1400,1000")
        print(f"wrote {out / f'{name}.png'}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--site":
        return site_shots(Path(argv[1]), Path(argv[2]))
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    run = Path(argv[0])
    missing = [name for name in (*PLOTS, "report.html") if not (run / name).is_file()]
    if missing:
        print(f"docs_pictures: {run} has no {', '.join(missing)}; give a quick-start output folder", file=sys.stderr)
        return 2
    TARGET.mkdir(parents=True, exist_ok=True)
    for plot in PLOTS:
        shutil.copyfile(run / plot, TARGET / plot)
    with tempfile.TemporaryDirectory() as scratch:
        # the report is written again from a copy named like the quick start's folder, so its header shows
        # that name rather than wherever the run was kept
        copy = Path(scratch) / "quickstart_output"
        shutil.copytree(run, copy)
        subprocess.run([sys.executable, "-m", "deception_core", "report", str(copy), "-o", str(Path(scratch) / "report.html")],
                       check=True, capture_output=True, timeout=600)
        screenshot(Path(scratch) / "report.html", TARGET / "report.png")
    print(f"wrote {', '.join(PLOTS)} and report.png to {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

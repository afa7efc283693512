"""One of two processes racing into the same new ``--output`` folders (see ``test_edges_output.py``).

``python output_race_worker.py BASE NAME OTHER REPEATS MODEL_DIR``: for each repeat ``i`` it waits at a
barrier with the process ``OTHER`` (each writes ``BASE/ready-i-NAME`` and waits for the other's), then
runs `deception run` into ``BASE/out-i`` in this process (imports paid once), and finally writes every
result (exit code, output, whether a traceback was printed) to ``BASE/results-NAME.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def barrier(base: Path, index: int, name: str, other: str) -> None:
    (base / f"ready-{index}-{name}").write_text("")
    deadline = time.monotonic() + 120
    while not (base / f"ready-{index}-{other}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never reached repeat {index}")
        time.sleep(0.001)


def main() -> None:
    base, name, other, repeats, model = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    from click.testing import CliRunner
    from reliability_plugin import base_args

    from deception_core.cli import cli

    results = []
    for index in range(repeats):
        out = base / f"out-{index}"
        small = {"--trials": "1", "--max-rounds": "1", "--max-tokens": "2"}
        args = [*base_args(Path(model), out, **small), "--no-analyze", "--no-report"]
        barrier(base, index, name, other)
        result = CliRunner().invoke(cli, args)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        results.append({"index": index, "exit_code": result.exit_code, "output": result.output,
                        "traceback": "".join(traceback.format_exception(result.exception)) if crashed else ""})
    (base / f"results-{name}.json").write_text(json.dumps({"pid": os.getpid(), "results": results}))


if __name__ == "__main__":
    main()

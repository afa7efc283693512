"""A thin runner for a GPU pod: the Python API instead of the command line.

    python examples/run_on_pod.py --model google/gemma-2-2b-it --scenarios 6 --trials 40 --output /workspace/run

It builds a `RunConfig` (the same fields as `deception run`), runs it, and prints where the
results are. Research code can do the same in a notebook and keep the `RunResults` object.
"""

from __future__ import annotations

import argparse

from deception_core import InterpretabilityRunner, RunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:gemma-3-270m")
    parser.add_argument("--scenarios", type=int, default=1)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--max-rounds", type=int, default=2)
    parser.add_argument("--mode", default="emergent", choices=["emergent", "instructed", "both"])
    parser.add_argument("--batch-size", default="auto", help="generation calls per batch, or auto (from the device)")
    parser.add_argument("--checkpoint-dir", default=None)
    parser.add_argument("--output", default="./pod_output")
    args = parser.parse_args()

    config = RunConfig(
        model=args.model,
        scenarios=args.scenarios,
        trials=args.trials,
        max_rounds=args.max_rounds,
        mode=args.mode,
        batch_size=args.batch_size,
        checkpoint_dir=args.checkpoint_dir,
        output=args.output,
    )
    results = InterpretabilityRunner(config).run()
    print(results.summary)
    labels = results.dataset.column("label")
    print(f"{len(labels)} samples ({labels.count('deceptive')} deceptive) in {results.wall_seconds:.0f} s "
          f"-> {results.output_dir}")


if __name__ == "__main__":
    main()

"""``--shard auto``: the shard of this Slurm array task, from the variables Slurm sets."""

from __future__ import annotations

import os
from collections.abc import Mapping

from deception_core.base.errors import ConfigError

TASK_ID, TASK_COUNT, TASK_MIN, TASK_STEP = (
    "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP")


def array_shard(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(index, total)`` of this array task: ``--array=0-7`` and ``--array=1-8`` both give 0/8 .. 7/8.

    The index counts tasks from ``SLURM_ARRAY_TASK_MIN`` in steps of ``SLURM_ARRAY_TASK_STEP`` (both
    optional: 0 and 1), so an array that does not start at 0 or has a step still covers every shard once.
    """
    env = os.environ if environ is None else environ
    missing = [name for name in (TASK_ID, TASK_COUNT) if not env.get(name)]
    if missing:
        raise ConfigError(
            f"--shard auto reads {TASK_ID} and {TASK_COUNT}, which Slurm sets in the tasks of a job array "
            f"(sbatch --array); {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
            "Submit with --array, or pass --shard I/N")
    try:
        task, count = int(env[TASK_ID]), int(env[TASK_COUNT])
        first, step = int(env.get(TASK_MIN) or 0), int(env.get(TASK_STEP) or 1)
    except ValueError:
        raise ConfigError(
            f"--shard auto: {TASK_ID}={env.get(TASK_ID)!r}, {TASK_COUNT}={env.get(TASK_COUNT)!r}, "
            f"{TASK_MIN}={env.get(TASK_MIN)!r}, {TASK_STEP}={env.get(TASK_STEP)!r} are not all integers") from None
    if step < 1 or (task - first) % step:
        raise ConfigError(f"--shard auto: {TASK_ID}={task} is not on the array's grid ({TASK_MIN}={first}, "
                          f"{TASK_STEP}={step})")
    index = (task - first) // step
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"--shard auto: {TASK_ID}={task} with {TASK_MIN}={first}, {TASK_STEP}={step} gives shard {index}, "
            f"outside 0..{count - 1} ({TASK_COUNT}={count}); a --array with gaps (such as 0,3,7) cannot be "
            "sharded automatically, pass --shard I/N")
    return index, count

"""Repository-wide test setup: keep every test offline and quiet."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config) -> None:
    """One torch thread for the whole session.

    Tiny models are dominated by threading overhead (worst on shared CPUs), and the resume and
    merge tests compare float32 results byte for byte, which needs a fixed reduction order: the
    CPU math library may otherwise change its thread count with the machine's load.
    """
    import torch

    torch.set_num_threads(1)

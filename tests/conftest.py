"""Repository-wide test setup: keep every test offline and quiet."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config) -> None:
    """One torch thread: tiny models are dominated by threading overhead, worst on shared CPUs."""
    import torch

    torch.set_num_threads(1)

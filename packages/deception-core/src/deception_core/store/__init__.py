"""The dataset a run writes: activations in safetensors, records in JSONL, schema-versioned."""

from deception_core.store.dataset import (
    SCHEMA_VERSION,
    Dataset,
    DatasetError,
    activation_key,
    read_dataset,
    write_dataset,
)

__all__ = ["SCHEMA_VERSION", "Dataset", "DatasetError", "activation_key", "read_dataset", "write_dataset"]

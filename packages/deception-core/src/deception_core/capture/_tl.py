"""Moved to `deception_core.model.lens` (the model surface owns the TransformerLens plumbing); kept for old imports."""

from deception_core.model.lens import (
    HookPointRecorder,
    boot_bridge,
    check_hook_names,
    parameter_snapshot,
    resid_post,
    unwrap_bridge,
)

__all__ = ["HookPointRecorder", "boot_bridge", "check_hook_names", "parameter_snapshot", "resid_post", "unwrap_bridge"]

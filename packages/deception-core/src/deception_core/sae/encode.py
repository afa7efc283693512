"""Load the run's SAE and encode stored activations into sparse codes (CSR) plus reconstruction error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from deception_core.base.errors import UsageError
from deception_core.base.records import Sample
from deception_core.sae.compat import SaeChoice, SaeIncompatible
from deception_core.store.dataset import activation_key

log = logging.getLogger("deception.sae")


def load_sae(choice: SaeChoice, device: str = "cpu") -> Any:
    """The sae-lens SAE of ``choice`` (a local directory, or a release from the hub)."""
    from sae_lens import SAE

    if choice.path:
        sae = SAE.load_from_disk(choice.path, device=device)
    else:
        try:
            sae = SAE.from_pretrained(choice.release, choice.sae_id, device=device)
        except Exception as error:  # offline, missing id, gated repo: say which and what to do
            raise UsageError(
                f"cannot load SAE {choice.release}/{choice.sae_id} ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200] if str(error) else ''}); check network access to the "
                "Hugging Face hub, or download it and pass --sae-path DIR"
            ) from None
    if int(sae.cfg.d_in) != int(choice.d_in or sae.cfg.d_in):
        source = choice.path or f"{choice.release}/{choice.sae_id}"
        raise SaeIncompatible(
            f"the SAE {source} has d_in={sae.cfg.d_in} but the model is {choice.d_in} wide; it was trained on "
            f"another model. Pick one with `deception saes --model ...` or pass --sae-path DIR with an SAE of "
            f"d_in={choice.d_in}"
        )
    return sae.eval()


def encode_matrix(sae: Any, matrix: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Encode ``matrix [n, d_in]``; return CSR ``indices`` (int32), ``values`` (float32), ``offsets``
    (int64, n + 1) of the non-zero codes, and each row's reconstruction MSE (float32)."""
    import torch

    parameter = next(sae.parameters())
    indices, values, counts, errors = [], [], [], []
    with torch.inference_mode():
        for start in range(0, matrix.shape[0], batch):
            x = torch.from_numpy(np.ascontiguousarray(matrix[start : start + batch])).to(parameter.device, parameter.dtype)
            codes = sae.encode(x)
            errors.append(((sae.decode(codes) - x) ** 2).mean(dim=-1).float().cpu().numpy())
            rows, cols = torch.nonzero(codes, as_tuple=True)
            indices.append(cols.to(torch.int32).cpu().numpy())
            values.append(codes[rows, cols].float().cpu().numpy())
            counts.append(torch.bincount(rows, minlength=x.shape[0]).cpu().numpy())
    count = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    return (np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32),
            np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32),
            offsets,
            np.concatenate(errors).astype(np.float32) if errors else np.zeros(0, np.float32))


def encode_dataset_arrays(
    sae: Any, choice: SaeChoice, samples: list[Sample], arrays: dict[str, np.ndarray],
    positions: Sequence[str],
) -> dict[str, Any]:
    """Add ``sae/{position}/indices|values|offsets`` to ``arrays`` and each sample's
    ``sae_reconstruction_mse`` / ``sae_l0`` (per position; the samples are replaced in the list);
    return the dataset's ``meta["sae"]``."""
    import attrs

    for position in positions:
        matrix = arrays[activation_key(choice.layer, position)]
        indices, values, offsets, mse = encode_matrix(sae, matrix)
        arrays[f"sae/{position}/indices"] = indices
        arrays[f"sae/{position}/values"] = values
        arrays[f"sae/{position}/offsets"] = offsets
        for row, sample in enumerate(samples):
            samples[row] = attrs.evolve(
                sample,
                sae_reconstruction_mse={**(sample.sae_reconstruction_mse or {}), position: float(mse[row])},
                sae_l0={**(sample.sae_l0 or {}), position: int(offsets[row + 1] - offsets[row])})
        log.info("SAE codes at %s: mean L0 %.1f, mean reconstruction MSE %.4g", position,
                 float(np.diff(offsets).mean()) if len(samples) else 0.0, float(mse.mean()) if len(mse) else 0.0)
    return {
        **choice.describe(),
        "d_sae": int(sae.cfg.d_sae),
        "d_in": int(sae.cfg.d_in),
        "architecture": str(sae.cfg.architecture()) if callable(getattr(sae.cfg, "architecture", None)) else None,
        "positions": list(positions),
        "storage": "CSR: sae/{position}/indices (int32), values (float32), offsets (int64, n_samples + 1)",
    }

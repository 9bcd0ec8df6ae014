"""Calibration samples for post-training quantization: `--calib DATA.npz` or `--calib random` (DESIGN.md §3).

DATA.npz holds, per input name, float32 samples stacked on the batch axis: (N, *input_shape[1:]) in the model's
own layout and value range. `random` draws standard-normal samples, which know nothing of the model's real input
range: the scales they give are poor, and a warning says so.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..ir import Graph

RANDOM_SAMPLES = 32
RANDOM_WARNING = ("--calib random: calibrating on random samples, which do not follow the model's input range; "
                  "the quantization scales will be poor. Pass --calib DATA.npz with real inputs for usable accuracy.")


def load_calibration(spec: str, graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """The samples `spec` names (a .npz path or "random") for the float inputs of `graph`."""
    if spec == "random":
        warnings.warn(RANDOM_WARNING, stacklevel=2)
        rng = np.random.default_rng(seed)
        return {n: rng.standard_normal((RANDOM_SAMPLES, *graph.tensor(n).shape[1:])).astype(np.float32)
                for n in graph.inputs}
    path = Path(spec)
    if not path.exists():
        raise UserError(f"calibration data {spec} does not exist; pass --calib DATA.npz (float32 samples per input "
                        "name, stacked on the batch axis) or --calib random.")
    try:
        data = np.load(path)
        samples = {k: np.asarray(data[k]) for k in data.files} if hasattr(data, "files") else None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {spec} as a .npz file ({exc}); pass --calib DATA.npz.") from None
    if samples is None:
        raise UserError(f"{spec} is a single array; --calib needs a .npz keyed by the model's input names "
                        f"({', '.join(graph.inputs)}).")
    counts = {len(v) for v in samples.values()}
    if len(counts) != 1 or 0 in counts:
        raise UserError(f"{spec}: every input needs the same, non-zero number of samples (got "
                        f"{ {k: len(v) for k, v in samples.items()} }).")
    return {k: v.astype(np.float32) for k, v in samples.items()}

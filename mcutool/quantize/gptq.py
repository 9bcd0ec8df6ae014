"""Error-compensating rounding of low-bit weights (GPTQ, Frantar et al. 2023, its column-by-column form).

Rounding each weight to its nearest level (round-to-nearest) ignores what the layer's inputs do with the errors;
with 15 levels (int4) that costs several dB of output SQNR per layer. GPTQ rounds a layer's input dimensions one
at a time and spreads each one's rounding error over the dimensions not yet rounded, weighted by the inputs'
second moments H = E[x x^T] (from the calibration samples), which minimises E||(W - Q) x||^2 far better:

    q = gptq_round(w_rows, scale, hessian, qmax)     # w_rows (out, K) float, scale (out,) -> int8 (out, K)

The scale is the caller's (chosen per output channel beforehand); only the rounding changes, so the result is
an ordinary symmetric integer tensor that the kernels and TFLite Micro run as any other. `gptq_clip_round` also
takes one H per output channel (mixed.Calibration gives each channel the second moments its error has at the
network's outputs, output_hessians.py) and keeps its results for repeated calls on the same layer.
"""
from __future__ import annotations

import hashlib

import numpy as np

DAMPING = 0.01  # of the mean diagonal, added to H (GPTQ's default): keeps the Cholesky factor stable


def gptq_round(w_rows: np.ndarray, scale: np.ndarray, hessian: np.ndarray, qmax: int) -> np.ndarray:
    """Integers in [-qmax, qmax] for `w_rows` (out, K) at per-row `scale`, rounded by GPTQ under `hessian` (K, K)."""
    w = np.asarray(w_rows, dtype=np.float64).copy()
    s = np.asarray(scale, dtype=np.float64).reshape(-1, 1)
    h = np.asarray(hessian, dtype=np.float64).copy()
    k = h.shape[0]
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.diag_indices(k)] += DAMPING * float(np.mean(np.diag(h)))
    order = np.argsort(-np.diag(h), kind="stable")  # GPTQ's act-order: the largest inputs rounded first
    w, h = w[:, order], h[np.ix_(order, order)]
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper triangular: H^-1 = U^T U
    except np.linalg.LinAlgError:
        return np.clip(np.round(np.asarray(w_rows, np.float64) / s), -qmax, qmax).astype(np.int8)
    q = np.zeros_like(w)
    for i in range(k):
        q[:, i] = np.clip(np.round(w[:, i] / s[:, 0]), -qmax, qmax)
        err = (w[:, i] - q[:, i] * s[:, 0]) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    out = np.empty_like(q)
    out[:, order] = q
    return out.astype(np.int8)



CLIP_FRACTIONS = np.linspace(1.0, 0.4, 13)  # of max |w|: the clipping bounds gptq_clip_round tries


def gptq_clip_round(w_rows: np.ndarray, amax: np.ndarray, hessian: np.ndarray, qmax: int,
                    scale_of=lambda s: s) -> tuple[np.ndarray, np.ndarray]:
    """The clip (a fraction of `amax`, CLIP_FRACTIONS) and GPTQ rounding under it whose output error
    E||(w - q s) x||^2 = (w - q s) H (w - q s)^T is smallest, per row where `amax` has one value per row of
    `w_rows` (out, K), for all rows together where it has one: the integers (out, K) and the scale(s).
    `hessian` is one (K, K) for every row, or one per row (out, K, K: output_hessians.blended).
    `scale_of` adjusts each candidate scale array (bias_safe_scale) before rounding."""
    w = np.asarray(w_rows, dtype=np.float64)
    amax = np.asarray(amax, np.float64).reshape(-1)
    out, n = w.shape[0], len(CLIP_FRACTIONS)
    cands = [np.asarray(scale_of(np.where(amax > 0, amax * f / qmax, 1.0).astype(np.float32))) for f in CLIP_FRACTIONS]
    rows = np.concatenate([np.broadcast_to(c.astype(np.float64), (out,)) for c in cands])
    key = (hashlib.blake2b(w.tobytes() + amax.tobytes() + rows.tobytes()).hexdigest(), id(hessian), qmax)
    if not (key in _ROUNDED and _ROUNDED[key][0] is hessian):
        _ROUNDED[key] = (hessian, _clip_round(w, amax, np.asarray(hessian, np.float64), qmax, cands, rows))
        while len(_ROUNDED) > ROUNDED_KEPT:
            _ROUNDED.pop(next(iter(_ROUNDED)))
    q, scale = _ROUNDED[key][1]
    return q.copy(), np.array(scale)


ROUNDED_KEPT = 256  # gptq_clip_round's results kept: a width choice quantizes the same layers many times
_ROUNDED: dict = {}  # key -> (the hessian object, whose id is in the key, kept alive; the result)


def _clip_round(w, amax, hessian, qmax, cands, rows):
    out, n = w.shape[0], len(CLIP_FRACTIONS)
    tiled = np.tile(w, (n, 1))
    if hessian.ndim == 2:
        q = gptq_round(tiled, rows, hessian, qmax)
        e = tiled - q * rows[:, None]
        err = np.einsum("ik,kl,il->i", e, hessian, e)
    else:  # each row's candidates under its own hessian
        q, err = np.empty(tiled.shape, np.int8), np.empty(len(tiled))
        for r in range(out):
            at = r + out * np.arange(n)
            q[at] = gptq_round(tiled[at], rows[at], hessian[r], qmax)
            e = tiled[at] - q[at] * rows[at, None]
            err[at] = np.einsum("ik,kl,il->i", e, hessian[r], e)
    err = err.reshape(n, out)
    if amax.size == 1:
        best = int(np.argmin(err.sum(axis=1)))
        return q[best * out:(best + 1) * out], cands[best]
    best = np.argmin(err, axis=0)
    pick = best * out + np.arange(out)
    return q[pick], np.stack(cands)[best, np.arange(out)]

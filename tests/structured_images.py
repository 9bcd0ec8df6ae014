"""Structured test images for float models (issue 4): what calibration and agreement are measured on.

White noise collapses a CIFAR-style classifier to one class, so the images have the structure of pictures.
Image i is of kind i % 4:
  0  smooth field: a k x k grid (k in 2..5) of uniform random colours, upsampled bilinearly to the full size;
  1  linear gradient between two random colours along a random direction;
  2  shapes: one to three discs or rectangles of random colour, position and size on a flat random background;
  3  texture: sinusoidal stripes (or their product with the perpendicular stripes: a checker) of frequency 2-8
     cycles per image at a random angle, blending two random colours.
Every image then gets N(0, 0.02) pixel noise, is clipped to [0, 1] and scaled to the model's range (0-255 for
MLPerf Tiny's ResNet-8, whose input is raw pixel values). A seed gives the same images on every machine; the
calibration and the test images come from different seeds.
"""
from __future__ import annotations

import numpy as np


def _smooth(rng, size: int) -> np.ndarray:
    k = int(rng.integers(2, 6))
    low = rng.uniform(0, 1, (k, k, 3))
    idx = np.linspace(0, k - 1, size)
    i0 = np.floor(idx).astype(int)
    i1 = np.minimum(i0 + 1, k - 1)
    f = idx - i0
    rows = low[i0] * (1 - f)[:, None, None] + low[i1] * f[:, None, None]
    return rows[:, i0] * (1 - f)[None, :, None] + rows[:, i1] * f[None, :, None]


def _gradient(rng, xx, yy) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    t = np.cos(a) * xx + np.sin(a) * yy
    t = ((t - t.min()) / (np.ptp(t) + 1e-9))[..., None]
    return rng.uniform(0, 1, 3) * (1 - t) + rng.uniform(0, 1, 3) * t


def _shapes(rng, xx, yy) -> np.ndarray:
    img = np.broadcast_to(rng.uniform(0, 1, 3), xx.shape + (3,)).copy()
    for _ in range(int(rng.integers(1, 4))):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.35)
        if rng.random() < 0.5:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        else:
            mask = (abs(xx - cx) < r) & (abs(yy - cy) < r * rng.uniform(0.4, 1))
        img[mask] = rng.uniform(0, 1, 3)
    return img


def _texture(rng, xx, yy) -> np.ndarray:
    fr, a = rng.uniform(2, 8), rng.uniform(0, np.pi)
    t = np.sin(2 * np.pi * fr * (np.cos(a) * xx + np.sin(a) * yy))
    if rng.random() < 0.5:
        t = t * np.sin(2 * np.pi * fr * (np.sin(a) * xx - np.cos(a) * yy))
    w = ((t + 1) / 2)[..., None]
    return rng.uniform(0, 1, 3) * (1 - w) + rng.uniform(0, 1, 3) * w


def structured_images(n: int, seed: int, size: int = 32, scale: float = 255.0) -> np.ndarray:
    """n float32 images (n, size, size, 3), NHWC, values in [0, scale]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            img = _smooth(rng, size)
        elif kind == 1:
            img = _gradient(rng, xx, yy)
        elif kind == 2:
            img = _shapes(rng, xx, yy)
        else:
            img = _texture(rng, xx, yy)
        out[i] = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1) * scale
    return out

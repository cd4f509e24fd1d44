"""Small learnable data sets for the tests, made on the host with NumPy."""

from __future__ import annotations

import numpy as np


def blobs(n, *, seed=0, d=64, classes=10, noise=60, label_dtype=np.int64):
    """Synthetic digits: a random uint8 centre per class plus uniform noise of +-``noise``.

    Returns ``(x, t)``: ``x`` uint8 (n, d), ``t`` labels (n,) of ``label_dtype``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, size=(classes, d))
    labels = rng.integers(0, classes, size=n)
    jitter = rng.integers(-noise, noise, size=(n, d))
    return np.clip(centres[labels] + jitter, 0, 255).astype(np.uint8), labels.astype(label_dtype)

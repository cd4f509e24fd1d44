"""Saving and loading TwoLayerNet weights as plain ``.npz`` files (never pickle)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from .backends import Backend, to_numpy
from .nets import PARAM_NAMES, TwoLayerNet

__all__ = ["CheckpointError", "load_weights", "save_weights"]


class CheckpointError(ValueError):
    """A weights file that is missing, not an xpnet ``.npz``, or of the wrong shape."""


def save_weights(net: TwoLayerNet, path: str | os.PathLike[str]) -> Path:
    """Write ``net.params`` (and its activation) to ``path`` as ``.npz``, atomically.

    The file is written next to ``path`` under a temporary name and renamed into place
    only when complete, so an existing file is never left half-written.
    """
    path = Path(path)
    arrays = {k: to_numpy(net.params[k]) for k in PARAM_NAMES}
    arrays["activation"] = np.array(net.activation)
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


def load_weights(
    path: str | os.PathLike[str],
    *,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    input_size: int | None = None,
    output_size: int | None = None,
) -> TwoLayerNet:
    """Build a :class:`TwoLayerNet` from a file written by :func:`save_weights`.

    Parameters
    ----------
    path : path-like
    backend, dtype : optional
        Where the net lives, as for :class:`TwoLayerNet`.
    input_size, output_size : int, optional
        Expected sizes (784 and 10 for MNIST); a mismatch is an error.

    Raises
    ------
    CheckpointError
        One line naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; train with --save {path}")
    not_ours = f"{path} is not an xpnet weights file (.npz written by --save)"
    try:
        data = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{not_ours}: {exc}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
        raise CheckpointError(f"{not_ours}: it holds a single array, not named parameters")
    try:
        with data:
            arrays: dict[str, Any] = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{not_ours}: {exc}") from None
    missing = [k for k in PARAM_NAMES if k not in arrays]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it is not a TwoLayerNet file")
    w1, b1, w2, b2 = (arrays[k] for k in PARAM_NAMES)
    if any(not np.issubdtype(a.dtype, np.floating) for a in (w1, b1, w2, b2)):
        raise CheckpointError(f"{path}: parameters must be floating point arrays")
    ok = (
        w1.ndim == 2
        and w2.ndim == 2
        and b1.shape == (w1.shape[1],)
        and w2.shape[0] == w1.shape[1]
        and b2.shape == (w2.shape[1],)
    )
    if not ok:
        shapes = ", ".join(f"{k} {arrays[k].shape}" for k in PARAM_NAMES)
        raise CheckpointError(f"{path}: inconsistent TwoLayerNet shapes ({shapes})")
    for name, want, got in (
        ("input", input_size, w1.shape[0]),
        ("output", output_size, w2.shape[1]),
    ):
        if want is not None and want != got:
            raise CheckpointError(f"{path}: {name} size is {got}, but the data needs {want}")
    activation = str(arrays.get("activation", "sigmoid"))
    if activation not in ("sigmoid", "relu"):
        raise CheckpointError(f"{path}: unknown activation {activation!r}")
    net = TwoLayerNet(
        w1.shape[0], w1.shape[1], w2.shape[1], backend=backend, dtype=dtype,
        activation=activation, seed=0,
    )  # fmt: skip
    net.params = {k: net.backend.asarray(arrays[k], dtype=net.dtype) for k in PARAM_NAMES}
    return net

"""IDX files: read one, and read the four of an MNIST-format data set as checked arrays."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["FILES", "DataError", "parse_files", "read_idx"]

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class DataError(ValueError):
    """A data file is missing, unreadable or not what its name says."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one uint8 IDX file (gzip-compressed if its name ends in ``.gz``).

    Parameters
    ----------
    path : path-like
        An IDX file such as ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        uint8, shape from the header: ``(N, 28, 28)`` for MNIST images, ``(N,)`` for labels.

    Raises
    ------
    DataError
        The file cannot be read or decompressed, is not a uint8 IDX file, or its length
        does not match its header.
    """
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot be read ({exc}); replace it with a fresh copy") from exc
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] == 0:
        magic = int.from_bytes(data[:4], "big")
        raise DataError(
            f"{path}: bad magic number {magic} (expected 2051 for images, 2049 for labels); "
            "this is not an MNIST-format file, replace it with a fresh copy"
        )
    ndim = data[3]
    offset = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = offset + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{path}: {len(data)} bytes but its header (shape {shape}) implies {expected}; "
            "the file is truncated or corrupt, replace it with a fresh copy"
        )
    # copy: np.frombuffer over bytes is read-only, and callers may modify the arrays
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape).copy()


def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    x, t = read_idx(images_path), read_idx(labels_path)
    if x.ndim != 3:
        raise DataError(f"{images_path}: magic number {2048 + x.ndim}, expected 2051 (images)")
    if x.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {x.shape[1:]}, expected 28x28")
    if t.ndim != 1:
        raise DataError(f"{labels_path}: magic number {2048 + t.ndim}, expected 2049 (labels)")
    if len(x) != len(t):
        raise DataError(
            f"{images_path} holds {len(x)} images but {labels_path} holds {len(t)} labels; "
            "the two files do not belong together, replace them with a matching pair"
        )
    if t.size and t.max() > 9:
        raise DataError(f"{labels_path}: label {t.max()} outside 0..9; replace the file")
    return x, t


def parse_files(paths: Sequence[Path]) -> tuple[np.ndarray, ...]:
    return (*_read_split(paths[0], paths[1]), *_read_split(paths[2], paths[3]))

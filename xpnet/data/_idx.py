"""IDX files: read one, and read the four of an MNIST-format data set as checked arrays."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


#: The most deflate can expand: a gzip file of n bytes holds at most ~1032 n bytes.
MAX_GZIP_RATIO = 1032
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one uint8 IDX file (gzip-compressed if its name ends in ``.gz``).

    The header is read first; the data are then decompressed straight into an array of
    the size it declares, a chunk at a time, so a file whose content is longer than its
    header says is refused after one byte too many, and one whose header claims more
    than its size can hold is refused before anything is allocated.

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
    fresh = "replace it with a fresh copy"
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[:3] != b"\x00\x00\x08" or head[3] == 0:
                magic = int.from_bytes(head, "big")
                raise DataError(
                    f"{path}: bad magic number {magic} (expected 2051 for images, 2049 for "
                    f"labels); this is not an MNIST-format file, {fresh}"
                )
            ndim = head[3]
            dims = fh.read(4 * ndim)
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
            offset = 4 + 4 * ndim
            size = int(np.prod(shape, dtype=np.int64)) if len(dims) == 4 * ndim else -1
            _check_declared(path, fh, shape, offset, size)
            out = np.empty(size, dtype=np.uint8)
            got = 0
            while got < size:
                n = fh.readinto(memoryview(out)[got : got + _CHUNK])
                if not n:
                    break
                got += n
            extra = len(fh.read(1)) if got == size else 0
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot be read ({exc}); {fresh}") from exc
    if got != size or extra:
        length = f"{offset + got} bytes" if not extra else f"more than {offset + size} bytes"
        raise DataError(
            f"{path}: {length} but its header (shape {shape}) implies {offset + size}; "
            f"the file is truncated or corrupt, {fresh}"
        )
    return out.reshape(shape)


def _check_declared(path: Path, fh: Any, shape: tuple, offset: int, size: int) -> None:
    """Refuse a header whose size the file cannot hold, before allocating it."""
    stored = os.fstat(fh.fileno()).st_size if hasattr(fh, "fileno") else None
    if size < 0:
        raise DataError(f"{path}: its header is cut short; the file is truncated or corrupt")
    if stored is None:
        return
    gz = path.suffix == ".gz"
    most = stored * MAX_GZIP_RATIO if gz else stored - offset
    if size > most:
        held = f"a {stored:,}-byte gzip file holds at most {most:,}" if gz else f"{stored:,} bytes"
        raise DataError(
            f"{path}: its header (shape {shape}) implies {offset + size:,} bytes, but "
            f"{held}; the file is truncated or corrupt, replace it with a fresh copy"
        )


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

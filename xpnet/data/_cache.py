"""The parsed cache: ``.npz`` copies of parsed data sets, keyed by the raw files' fingerprint."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import atomic_write, remove_stale_temporaries

__all__ = ["CACHE_KEEP", "cache_file", "cache_root", "fingerprint", "read_cache", "write_cache"]

# Parsed cache entries kept per data set (the most recently used ones).
CACHE_KEEP = 2
_KEYS = ("x_train", "t_train", "x_test", "t_test")


def cache_root() -> Path:
    return Path(os.environ.get("XPNET_CACHE_DIR") or Path.home() / ".cache" / "xpnet" / "parsed")


def fingerprint(paths: Sequence[str | os.PathLike[str]]) -> str:
    """SHA-256 (first 16 hex digits) of the raw bytes of ``paths``, in order.

    The same data has the same fingerprint wherever it lies, so the parsed cache is shared
    between directories and a checkpoint can name the exact data it was trained on.
    """
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_file(dataset: str, fp: str) -> Path:
    return cache_root() / f"{dataset}-{fp}.npz"


def read_cache(path: Path) -> tuple[np.ndarray, ...] | None:
    try:
        # own the handle: np.load leaks it when the file is not a valid zip
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = tuple(npz[k] for k in _KEYS)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged: parse the sources again
    x_tr, t_tr, x_te, t_te = arrays
    ok = (
        all(a.dtype == np.uint8 for a in arrays)
        and x_tr.ndim == x_te.ndim == 3
        and x_tr.shape[1:] == x_te.shape[1:] == (28, 28)
        and t_tr.shape == (len(x_tr),)
        and t_te.shape == (len(x_te),)
    )
    if ok:
        try:
            os.utime(path)  # most recently used: the pruning below keeps it
        except OSError:
            pass
    return arrays if ok else None


def write_cache(path: Path, dataset: str, arrays: Sequence[np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, ".*.tmp")  # left by a killed writer
        with atomic_write(path) as fh:
            np.savez(fh, **dict(zip(_KEYS, arrays, strict=True)))
        # entries for older versions of the files are dead weight (~55 MB each)
        entries = sorted(
            path.parent.glob(f"{dataset}-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for old in entries[CACHE_KEEP:]:
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # the cache only saves time; a read-only home must not break loading

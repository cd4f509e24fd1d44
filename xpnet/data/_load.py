"""Loading: where the files are looked for, the :class:`DataSet`, ``load_data``, ``load_mnist``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._cache import cache_file, fingerprint, read_cache, write_cache
from ._download import (
    MD5S,
    TIMEOUT_S,
    Unavailable,
    download_file,
    failure_marker,
    md5,
    mirror_urls,
    offline,
    recent_failure,
    remember_failure,
)
from ._idx import FILES, DataError, parse_files

__all__ = [
    "DATASETS",
    "SAMPLE_DIR",
    "SYSTEM_DIRS",
    "ChecksumWarning",
    "DataSet",
    "SampleFallbackWarning",
    "load_data",
    "load_mnist",
]

DATASETS = ("mnist", "mnist-sample", "fashion-mnist")
# Read-only directories owned by a package manager (Debian's dataset-fashion-mnist).
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


class SampleFallbackWarning(UserWarning):
    """Full MNIST was unavailable, so the bundled 5,000-digit sample is used instead."""


class ChecksumWarning(UserWarning):
    """A data file failed its MD5 check and is being replaced by a fresh download."""


@dataclass(frozen=True)
class DataSet:
    """What :func:`load_data` read, and from where.

    Attributes
    ----------
    name : str
        The data set actually loaded (``"mnist-sample"`` after a fallback).
    source : str
        The directory the four files came from, or ``"bundled sample"``.
    fingerprint : str
        :func:`fingerprint` of the four raw ``.gz`` files.
    x_train, x_test : numpy.ndarray
        uint8 images, shape (N, 28, 28).
    t_train, t_test : numpy.ndarray
        uint8 labels 0..9, shape (N,).
    """

    name: str
    source: str
    fingerprint: str
    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray

    def describe(self) -> str:
        """One line: data set, where from, train/test counts."""
        return (
            f"{self.name} from {self.source}: {len(self.x_train):,} train / "
            f"{len(self.x_test):,} test images"
        )


def _dirs(
    dataset: str, data_dir: str | os.PathLike[str] | None
) -> tuple[Path, list[Path], list[Path]]:
    """Return (download target, directories to search in order, package-manager dirs).

    An explicit ``data_dir`` is the only directory searched.
    """
    if data_dir is not None:
        target = Path(data_dir).expanduser()
        return target, [target], []
    default = Path.home() / ".cache" / "xpnet" / dataset
    target = Path(os.environ.get("XPNET_DATA_DIR") or default).expanduser()
    system = [Path(d) for d in SYSTEM_DIRS.get(dataset, ())]
    return target, list(dict.fromkeys([target, default, *system])), system


def _make_dirs(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the directories it created, deepest last."""
    created = []
    for d in reversed([folder, *folder.parents]):
        if not d.exists():
            try:
                d.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                _remove_empty(created)
                raise Unavailable(f"cannot create {d} ({exc.strerror})") from exc
            created.append(d)
    return created


def _remove_empty(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()  # only succeeds when empty
        except OSError:
            return


def _load_full(
    dataset: str,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    mirrors: Sequence[str] | None,
    timeout: float,
    verify: bool,
) -> tuple[tuple[np.ndarray, ...], Path, str]:
    target, searched, system = _dirs(dataset, data_dir)
    complete = [d for d in searched if all((d / f).is_file() for f in FILES)]
    where = complete[0] if complete else target
    paths = [where / f for f in FILES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        if not download:
            raise Unavailable("downloads off: download=False")
        if offline():
            raise Unavailable("downloads off: XPNET_OFFLINE=1")
        recent = recent_failure(dataset)
        if recent is not None:
            raise Unavailable(recent)
    created = _make_dirs(where) if missing else []
    dead: set[str] = set()
    try:
        # package-manager files are trusted as shipped (Debian recompresses them); anything
        # in a directory we may write to is checked, and replaced if it fails
        for path in paths if where not in system else ():
            if not path.is_file():
                download_file(dataset, path, mirror_urls(dataset, mirrors), dead, timeout)
                continue
            if not verify:
                continue
            _verify(dataset, path, download, mirrors, dead, timeout)
    except Unavailable as exc:
        _remove_empty(created)
        if exc.network:
            remember_failure(dataset, str(exc))
        raise
    if dead or missing:
        failure_marker(dataset).unlink(missing_ok=True)  # the network works again
    fp = fingerprint(paths)
    cached = read_cache(cache_file(dataset, fp))
    if cached is not None:
        return cached, where, fp
    arrays = parse_files(paths)
    write_cache(cache_file(dataset, fp), dataset, arrays)
    return arrays, where, fp


def _verify(
    dataset: str,
    path: Path,
    download: bool,
    mirrors: Sequence[str] | None,
    dead: set[str],
    timeout: float,
) -> None:
    """Check ``path``'s MD5; replace a file that fails by a fresh download when allowed."""
    got, accepted = md5(path), MD5S[dataset][path.name]
    if got in accepted:
        return
    other = [n for n, s in MD5S.items() if n != dataset and got in s.get(path.name, ())]
    if other:
        raise DataError(f"{path} is {other[0]} data, not {dataset}; use another data_dir")
    problem = f"{path}: MD5 {got} does not match the published {accepted[0]}"
    if not download or offline():
        raise DataError(f"{problem}; replace the file, or pass verify=False to trust it")
    warnings.warn(f"{problem}; replacing it with a fresh download", ChecksumWarning, 4)
    try:
        download_file(dataset, path, mirror_urls(dataset, mirrors), dead, timeout)
    except Unavailable as exc:
        raise DataError(
            f"{problem} and no fresh copy could be fetched ({exc}); the file was left in "
            "place: replace it by hand or pass verify=False to trust it"
        ) from None


def load_data(
    dataset: str = "mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = TIMEOUT_S,
    verify: bool = True,
) -> DataSet:
    """Load an MNIST-format data set as uint8 arrays, with where it came from.

    Parameters
    ----------
    dataset : {"mnist", "mnist-sample", "fashion-mnist"}
        ``"mnist-sample"`` is the bundled 5,000-digit subset (4,000 train / 1,000 test).
    data_dir : path-like, optional
        Directory holding the four IDX ``.gz`` files, and the only one read: missing files
        are downloaded there (or, with downloads off, an error lists them). Without it:
        ``$XPNET_DATA_DIR`` or ``~/.cache/xpnet/<dataset>``, then, for Fashion-MNIST,
        Debian's ``/usr/share/datasets/fashion-mnist``; MNIST falls back to the sample.
    download : bool
        Fetch missing or corrupt files (``XPNET_OFFLINE=1`` turns this off). After every
        mirror failed, no new attempt is made for :data:`RETRY_AFTER_S` seconds.
    mirrors : sequence of str, optional
        Base URLs to try in order; default ``$XPNET_<DATASET>_MIRRORS``, else :data:`MIRRORS`.
    timeout : float
        Seconds to wait for a mirror to connect, and for each read.
    verify : bool
        Check the MD5 of files found in writable data directories (downloads are always
        checked; package-manager directories never are). The structure checks (magic
        numbers, sizes, label range) are always made.

    Returns
    -------
    DataSet
        Images (N, 28, 28) and labels (N,), uint8, the data set's name and source, and the
        fingerprint of its raw files.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset == "mnist-sample":
        return _sample()
    try:
        arrays, where, fp = _load_full(dataset, data_dir, download, mirrors, timeout, verify)
    except Unavailable as exc:
        target, searched, _ = _dirs(dataset, data_dir)
        if data_dir is not None:
            raise DataError(
                f"data_dir {target} lacks the {dataset} files and they could not be "
                f"downloaded: {exc}; put {', '.join(FILES)} there"
            ) from None
        if dataset == "fashion-mnist":
            dirs = ", ".join(map(str, searched))
            raise DataError(
                f"fashion-mnist not found in {dirs} and could not be downloaded: {exc}; "
                "run `apt-get install dataset-fashion-mnist`, put the four .gz files in "
                f"{target}, or run once online (download=True)"
            ) from None
        warnings.warn(
            f"full MNIST unavailable ({_short(exc)}); using the 5,000-digit sample\n"
            f"  for the full set: put the four MNIST .gz files in {target}",
            SampleFallbackWarning,
            stacklevel=2,
        )
        return _sample()
    return DataSet(dataset, str(where), fp, *arrays)


def _short(exc: Unavailable) -> str:
    """The first reason only: the fallback warning stays two short lines."""
    first = str(exc).split("; ")[0]
    return first if len(first) <= 90 else first[:87] + "..."


def _sample() -> DataSet:
    # small enough (~0.1 s) to parse every time: nothing is written on a fresh machine
    paths = [SAMPLE_DIR / f for f in FILES]
    return DataSet("mnist-sample", "bundled sample", fingerprint(paths), *parse_files(paths))


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dataset: str = "mnist",
    **sources: Any,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load an MNIST-format data set as NumPy arrays.

    Parameters
    ----------
    normalize : bool
        True: images as float32 in [0, 1]; False: uint8 in 0..255.
    flatten : bool
        True: images of shape ``(N, 784)``; False: ``(N, 1, 28, 28)``.
    one_hot_label : bool
        True: labels as float32 one-hot rows ``(N, 10)``; False: uint8 ``(N,)``.
    dataset : {"mnist", "mnist-sample", "fashion-mnist"}
        ``"mnist-sample"`` is the bundled 5,000-digit subset (4,000 train / 1,000 test).
    **sources
        ``data_dir``, ``download``, ``mirrors``, ``timeout``, ``verify``: where the files
        come from, as for :func:`load_data`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test)) : tuple of numpy.ndarray
        60,000 / 10,000 examples for the full sets.

    Raises
    ------
    ValueError
        Unknown ``dataset``.
    DataError
        A file is malformed or fails its checksum and cannot be replaced, an explicit
        ``data_dir`` lacks files that cannot be downloaded, or Fashion-MNIST is neither
        installed nor downloadable.

    Warns
    -----
    SampleFallbackWarning
        ``dataset="mnist"`` could be neither found nor downloaded: the sample is returned.
    ChecksumWarning
        A file in the data directory failed its MD5 check and is being downloaded again.
    """
    d = load_data(dataset, **sources)
    return (
        (_images(d.x_train, normalize, flatten), _labels(d.t_train, one_hot_label)),
        (_images(d.x_test, normalize, flatten), _labels(d.t_test, one_hot_label)),
    )


def _images(x: np.ndarray, normalize: bool, flatten: bool) -> np.ndarray:
    if normalize:
        x = x.astype(np.float32)
        x /= 255  # divide, not multiply by 1/255: keeps 255 -> exactly 1.0
    return x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)


def _labels(t: np.ndarray, one_hot: bool) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[t] if one_hot else t

"""MNIST-format data sets (MNIST, Fashion-MNIST, a bundled 5,000-digit sample).

:func:`load_mnist` has the semantics of the "Deep Learning from Scratch" loader, but reads
the four standard IDX ``.gz`` files itself, verifies them, downloads them when missing and
keeps a parsed copy in xpnet's own cache (never next to data it was only asked to read).

Environment variables
---------------------
XPNET_DATA_DIR
    Directory holding the four ``.gz`` files (and where they are downloaded to), used in
    place of ``~/.cache/xpnet/<dataset>`` when no ``data_dir`` is given.
XPNET_CACHE_DIR
    Where parsed ``.npz`` copies go; default ``~/.cache/xpnet/parsed``.
XPNET_OFFLINE
    ``1`` turns downloads off, as ``download=False`` does.
XPNET_MNIST_MIRRORS, XPNET_FASHION_MNIST_MIRRORS
    Comma-separated base URLs replacing :data:`MIRRORS` (an empty value means "no mirror").
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import atomic_write, remove_stale_temporaries, temporary_beside
from ._progress import progress

__all__ = [
    "DATASETS",
    "ChecksumWarning",
    "DataError",
    "DataSet",
    "SampleFallbackWarning",
    "fingerprint",
    "load_data",
    "load_mnist",
    "read_idx",
]

DATASETS = ("mnist", "mnist-sample", "fashion-mnist")
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Published MD5s of the .gz files, as listed by torchvision.datasets.MNIST / FashionMNIST.
# Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1) recompressed the files: the .gz
# hashes differ, the decompressed IDX bytes match upstream's; its .gz MD5s are accepted too.
MD5S: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873",),
        "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432",),
        "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3",),
        "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c",),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "cf8536b0aa1a6ac5fa3f23001093305c",
        ),
        "train-labels-idx1-ubyte.gz": (
            "25c81989df183df01b3e8a0aad5dffbe",
            "10bea18fdb374794d4bb42e356e600c9",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "bef4ecab320f06d8554ea6380940ec79",
            "f78720b4224f21cce2f2ccf2d7a94c9a",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "bb300cfdad3c16e7a12a480ee83cd310",
            "0d30e22e447f3c33dab9ed536400ac01",
        ),
    },
}
# yann.lecun.com is gone; these are the mirrors torchvision and TF datasets rely on.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
# Read-only directories owned by a package manager (Debian's dataset-fashion-mnist).
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
# Per connect and per read: a mirror that accepts but never answers costs this, once.
TIMEOUT_S = 5.0
# After every mirror failed, no new attempt for this long (a marker file in the cache dir).
RETRY_AFTER_S = 600.0
# Parsed cache entries kept per data set (the most recently used ones).
CACHE_KEEP = 2
RETRIES = 2
BACKOFF_S = 0.5
SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
_CHUNK = 1 << 16


class DataError(ValueError):
    """A data file is missing, unreadable or not what its name says."""


class SampleFallbackWarning(UserWarning):
    """Full MNIST was unavailable, so the bundled 5,000-digit sample is used instead."""


class ChecksumWarning(UserWarning):
    """A data file failed its MD5 check and is being replaced by a fresh download."""


class _Unavailable(Exception):
    """The files are absent and could not be downloaded (the message says why).

    ``network`` is true when the mirrors were the problem (worth remembering for a while),
    false for a local reason (downloads off, a folder that cannot be created).
    """

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


class _BadDownload(Exception):
    """A transfer ended early or delivered the wrong bytes: worth another try."""


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


def _parse(paths: Sequence[Path]) -> tuple[np.ndarray, ...]:
    return (*_read_split(paths[0], paths[1]), *_read_split(paths[2], paths[3]))


# ---------------------------------------------------------------------------- parse cache
_KEYS = ("x_train", "t_train", "x_test", "t_test")


def _cache_root() -> Path:
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


def _cache_file(dataset: str, fp: str) -> Path:
    return _cache_root() / f"{dataset}-{fp}.npz"


def _read_cache(path: Path) -> tuple[np.ndarray, ...] | None:
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


def _write_cache(path: Path, dataset: str, arrays: Sequence[np.ndarray]) -> None:
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


# ------------------------------------------------------------------------------ download
def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _mirrors(dataset: str, mirrors: Sequence[str] | None) -> list[str]:
    env = os.environ.get(f"XPNET_{dataset.upper().replace('-', '_')}_MIRRORS")
    if mirrors is None:
        mirrors = MIRRORS[dataset] if env is None else [m for m in env.split(",") if m.strip()]
    return [m.strip().rstrip("/") + "/" for m in mirrors]


def _fetch(url: str, dest: Path, md5s: Sequence[str], timeout: float) -> None:
    """Download ``url`` to ``dest``; only a file whose MD5 is in ``md5s`` replaces ``dest``."""
    fd, tmp = temporary_beside(dest, ".part")
    try:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = progress(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name
            )
            with bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        # http.client ends a short body silently instead of raising IncompleteRead
        if total is not None and size != total:
            raise _BadDownload(f"truncated: got {size} of {total} bytes")
        if digest.hexdigest() not in md5s:
            raise _BadDownload(f"MD5 {digest.hexdigest()}, expected {md5s[0]}")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _download(
    dataset: str, dest: Path, mirrors: list[str], dead: set[str], timeout: float
) -> None:
    """Fetch ``dest.name`` from the first mirror that serves a verified copy.

    Mirrors that refuse connections or time out are added to ``dead`` and skipped from then
    on, so an offline machine gives up after one quick attempt per mirror.
    """
    remove_stale_temporaries(dest.parent, f".{dest.name}.*.part")  # left by a killed run
    reasons, network = [], True
    for mirror in mirrors:
        url = mirror + dest.name
        if mirror in dead:
            reasons.append(f"{url}: skipped, unreachable before")
            continue
        for attempt in range(RETRIES + 1):
            try:
                _fetch(url, dest, MD5S[dataset][dest.name], timeout)
                return
            except urllib.error.HTTPError as exc:
                reason, retry = f"HTTP {exc.code}", exc.code >= 500 or exc.code == 429
            except urllib.error.URLError as exc:  # refused, no DNS, no route: fail fast
                reason, retry = str(exc.reason), False
                dead.add(mirror)
            except TimeoutError:
                reason, retry = f"no answer within {timeout:g} s", False
                dead.add(mirror)
            except _BadDownload as exc:
                reason, retry = str(exc), True
            except (http.client.HTTPException, ConnectionError) as exc:
                reason, retry = f"broken transfer ({exc!r})", True
            except ValueError as exc:  # malformed mirror URL
                reason, retry, network = str(exc), False, False
            except OSError as exc:  # local trouble (permissions, disk full): no mirror helps
                raise _Unavailable(f"cannot write {dest} ({exc.strerror})") from exc
            if not retry or attempt == RETRIES:
                break
            time.sleep(BACKOFF_S * 2**attempt)
        reasons.append(f"{url}: {reason}")
    if not reasons:
        raise _Unavailable("no download mirror configured")
    raise _Unavailable("; ".join(reasons), network=network)


def _failure_marker(dataset: str) -> Path:
    return _cache_root() / f".download-failed-{dataset}"


def _recent_failure(dataset: str) -> str | None:
    """Why downloads are skipped for now, when every mirror failed a short while ago."""
    marker = _failure_marker(dataset)
    try:
        age = time.time() - marker.stat().st_mtime
        reason = marker.read_text(errors="replace").strip()
    except OSError:
        return None
    if not 0 <= age < RETRY_AFTER_S:
        return None
    return (
        f"all mirrors failed {age / 60:.0f} min ago; no new try for "
        f"{RETRY_AFTER_S / 60:.0f} min unless {marker} is deleted; that time: {reason[:200]}"
    )


def _remember_failure(dataset: str, reason: str) -> None:
    marker = _failure_marker(dataset)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(marker, "w") as fh:
            fh.write(reason + "\n")
    except OSError:
        pass  # only saves time on the next offline run


# ------------------------------------------------------------------------------- loading
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


def _offline() -> bool:
    return os.environ.get("XPNET_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


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
                raise _Unavailable(f"cannot create {d} ({exc.strerror})") from exc
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
            raise _Unavailable("downloads off: download=False")
        if _offline():
            raise _Unavailable("downloads off: XPNET_OFFLINE=1")
        recent = _recent_failure(dataset)
        if recent is not None:
            raise _Unavailable(recent)
    created = _make_dirs(where) if missing else []
    dead: set[str] = set()
    try:
        # package-manager files are trusted as shipped (Debian recompresses them); anything
        # in a directory we may write to is checked, and replaced if it fails
        for path in paths if where not in system else ():
            if not path.is_file():
                _download(dataset, path, _mirrors(dataset, mirrors), dead, timeout)
                continue
            if not verify:
                continue
            _verify(dataset, path, download, mirrors, dead, timeout)
    except _Unavailable as exc:
        _remove_empty(created)
        if exc.network:
            _remember_failure(dataset, str(exc))
        raise
    if dead or missing:
        _failure_marker(dataset).unlink(missing_ok=True)  # the network works again
    fp = fingerprint(paths)
    cached = _read_cache(_cache_file(dataset, fp))
    if cached is not None:
        return cached, where, fp
    arrays = _parse(paths)
    _write_cache(_cache_file(dataset, fp), dataset, arrays)
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
    got, accepted = _md5(path), MD5S[dataset][path.name]
    if got in accepted:
        return
    other = [n for n, s in MD5S.items() if n != dataset and got in s.get(path.name, ())]
    if other:
        raise DataError(f"{path} is {other[0]} data, not {dataset}; use another data_dir")
    problem = f"{path}: MD5 {got} does not match the published {accepted[0]}"
    if not download or _offline():
        raise DataError(f"{problem}; replace the file, or pass verify=False to trust it")
    warnings.warn(f"{problem}; replacing it with a fresh download", ChecksumWarning, 4)
    try:
        _download(dataset, path, _mirrors(dataset, mirrors), dead, timeout)
    except _Unavailable as exc:
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

    Parameters are those of :func:`load_mnist`.

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
    except _Unavailable as exc:
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


def _short(exc: _Unavailable) -> str:
    """The first reason only: the fallback warning stays two short lines."""
    first = str(exc).split("; ")[0]
    return first if len(first) <= 90 else first[:87] + "..."


def _sample() -> DataSet:
    # small enough (~0.1 s) to parse every time: nothing is written on a fresh machine
    paths = [SAMPLE_DIR / f for f in FILES]
    return DataSet("mnist-sample", "bundled sample", fingerprint(paths), *_parse(paths))


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = TIMEOUT_S,
    verify: bool = True,
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
    d = load_data(
        dataset, data_dir=data_dir, download=download, mirrors=mirrors, timeout=timeout,
        verify=verify,
    )  # fmt: skip
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

"""MNIST-format data sets (MNIST, Fashion-MNIST, a bundled 5,000-digit sample).

:func:`load_mnist` has the semantics of the "Deep Learning from Scratch" loader, but reads
the four standard IDX ``.gz`` files itself, verifies them, downloads them when missing and
keeps a parsed copy in xpnet's own cache (never next to data it was only asked to read).

Environment variables
---------------------
XPNET_DATA_DIR
    Directory holding the four ``.gz`` files (and where they are downloaded to); default
    ``~/.cache/xpnet/<dataset>``.
XPNET_CACHE_DIR
    Where parsed ``.npz`` copies go; default ``~/.cache/xpnet/parsed``.
XPNET_MNIST_MIRRORS, XPNET_FASHION_MNIST_MIRRORS
    Comma-separated base URLs replacing :data:`MIRRORS` (an empty value means "no mirror").
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._files import atomic_write
from ._progress import progress

__all__ = [
    "DATASETS",
    "ChecksumWarning",
    "DataError",
    "SampleFallbackWarning",
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
TIMEOUT_S = 30.0
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
    """The files are absent and could not be downloaded (the message says why)."""


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


def _cache_file(dataset: str, paths: Sequence[Path]) -> Path:
    root = os.environ.get("XPNET_CACHE_DIR") or Path.home() / ".cache" / "xpnet" / "parsed"
    # size and mtime_ns make a replaced or edited source file miss the old entry
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    source = hashlib.sha256(str(paths[0].resolve().parent).encode()).hexdigest()[:8]
    return Path(root) / f"{dataset}-{source}-{h.hexdigest()[:16]}.npz"


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
    return arrays if ok else None


def _write_cache(path: Path, arrays: Sequence[np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            np.savez(fh, **dict(zip(_KEYS, arrays, strict=True)))
        # entries for older versions of the same source files are dead weight (~55 MB each)
        prefix = path.name.rsplit("-", 1)[0] + "-"
        for old in path.parent.glob(prefix + "*.npz"):
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
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
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
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _Unavailable(f"cannot create {dest.parent} ({exc})") from exc
    reasons = []
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
                reason, retry = str(exc), False
            except OSError as exc:  # local trouble (permissions, disk full): no mirror helps
                raise _Unavailable(f"cannot write {dest} ({exc})") from exc
            if not retry or attempt == RETRIES:
                break
            time.sleep(BACKOFF_S * 2**attempt)
        reasons.append(f"{url}: {reason}")
    raise _Unavailable("; ".join(reasons) if reasons else "no download mirror configured")


# ------------------------------------------------------------------------------- loading
def _dirs(
    dataset: str, data_dir: str | os.PathLike[str] | None
) -> tuple[Path, list[Path], list[Path]]:
    """Return (download target, directories to search in order, package-manager dirs)."""
    default = Path.home() / ".cache" / "xpnet" / dataset
    target = Path(data_dir or os.environ.get("XPNET_DATA_DIR") or default).expanduser()
    system = [Path(d) for d in SYSTEM_DIRS.get(dataset, ())]
    return target, list(dict.fromkeys([target, default, *system])), system


def _load_full(
    dataset: str,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    mirrors: Sequence[str] | None,
    timeout: float,
    verify: bool,
) -> tuple[np.ndarray, ...]:
    target, searched, system = _dirs(dataset, data_dir)
    complete = [d for d in searched if all((d / f).is_file() for f in FILES)]
    if not complete and not download:
        raise _Unavailable("download=False was passed")
    where = complete[0] if complete else target
    paths = [where / f for f in FILES]
    if complete:
        cached = _read_cache(_cache_file(dataset, paths))
        if cached is not None:
            return cached
    dead: set[str] = set()
    # package-manager files are trusted as shipped (Debian recompresses them); anything in
    # a directory we may write to is checked, and replaced if it fails
    for path in paths if where not in system else ():
        if not path.is_file():
            _download(dataset, path, _mirrors(dataset, mirrors), dead, timeout)
            continue
        if not verify:
            continue
        got, accepted = _md5(path), MD5S[dataset][path.name]
        if got in accepted:
            continue
        other = [n for n, s in MD5S.items() if n != dataset and got in s.get(path.name, ())]
        if other:
            raise DataError(f"{path} is {other[0]} data, not {dataset}; use another data_dir")
        problem = f"{path}: MD5 {got} does not match the published {accepted[0]}"
        if not download:
            raise DataError(f"{problem}; replace the file, or pass download=True or verify=False")
        warnings.warn(f"{problem}; replacing it with a fresh download", ChecksumWarning, 3)
        try:
            _download(dataset, path, _mirrors(dataset, mirrors), dead, timeout)
        except _Unavailable as exc:
            raise DataError(
                f"{problem} and no fresh copy could be fetched ({exc}); the file was left in "
                "place: replace it by hand or pass verify=False to trust it"
            ) from None
    arrays = _parse(paths)
    _write_cache(_cache_file(dataset, paths), arrays)
    return arrays


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
        Directory holding the four IDX ``.gz`` files; default ``$XPNET_DATA_DIR``, then
        ``~/.cache/xpnet/<dataset>``. Searched first, then ``~/.cache/xpnet/<dataset>`` and,
        for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``.
    download : bool
        Fetch missing or corrupt files into ``data_dir`` (or the default directory).
    mirrors : sequence of str, optional
        Base URLs to try in order; default ``$XPNET_<DATASET>_MIRRORS``, else :data:`MIRRORS`.
    timeout : float
        Seconds to wait for a mirror to connect or send data.
    verify : bool
        Check the MD5 of files found in writable data directories (downloads are always
        checked; package-manager directories never are).

    Returns
    -------
    ((x_train, t_train), (x_test, t_test)) : tuple of numpy.ndarray
        60,000 / 10,000 examples for the full sets.

    Raises
    ------
    ValueError
        Unknown ``dataset``.
    DataError
        A file is malformed or fails its checksum and cannot be replaced, or Fashion-MNIST
        is neither installed nor downloadable.

    Warns
    -----
    SampleFallbackWarning
        ``dataset="mnist"`` could be neither found nor downloaded: the sample is returned.
    ChecksumWarning
        A file in the data directory failed its MD5 check and is being downloaded again.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset == "mnist-sample":
        # small enough (~0.1 s) to parse every time: nothing is written on a fresh machine
        arrays = _parse([SAMPLE_DIR / f for f in FILES])
    else:
        try:
            arrays = _load_full(dataset, data_dir, download, mirrors, timeout, verify)
        except _Unavailable as exc:
            target, searched, _ = _dirs(dataset, data_dir)
            dirs = ", ".join(map(str, searched))
            if dataset == "fashion-mnist":
                raise DataError(
                    f"fashion-mnist not found in {dirs} and could not be downloaded: {exc}; "
                    "run `apt-get install dataset-fashion-mnist`, put the four .gz files in "
                    f"{target}, or run once with network access and download=True"
                ) from None
            warnings.warn(
                f"full MNIST not found in {dirs} and could not be downloaded: {exc}; using "
                "the bundled 5,000-digit sample (4,000 train / 1,000 test). To get the full "
                f"set, put the four MNIST .gz files in {target} (or set XPNET_DATA_DIR), or "
                "run once with network access and download=True",
                SampleFallbackWarning,
                stacklevel=2,
            )
            arrays = _parse([SAMPLE_DIR / f for f in FILES])
    x_train, t_train, x_test, t_test = arrays
    return (
        (_images(x_train, normalize, flatten), _labels(t_train, one_hot_label)),
        (_images(x_test, normalize, flatten), _labels(t_test, one_hot_label)),
    )


def _images(x: np.ndarray, normalize: bool, flatten: bool) -> np.ndarray:
    if normalize:
        x = x.astype(np.float32)
        x /= 255  # divide, not multiply by 1/255: keeps 255 -> exactly 1.0
    return x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)


def _labels(t: np.ndarray, one_hot: bool) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[t] if one_hot else t

"""Downloads: verified fetches from the mirrors, retries, and a memory of recent failures."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .._env import env_flag
from .._files import atomic_write, remove_stale_temporaries, temporary_beside
from .._progress import progress
from ._cache import cache_root
from ._idx import DataError

__all__ = [
    "BACKOFF_S",
    "MD5S",
    "MIRRORS",
    "RETRIES",
    "RETRY_AFTER_S",
    "TIMEOUT_S",
    "Unavailable",
    "download_file",
    "failure_marker",
    "md5",
    "mirror_urls",
    "offline",
    "recent_failure",
    "remember_failure",
]

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
# Per connect and per read: a mirror that accepts but never answers costs this, once.
TIMEOUT_S = 5.0
# After every mirror failed, no new attempt for this long (a marker file in the cache dir).
RETRY_AFTER_S = 600.0
RETRIES = 2
BACKOFF_S = 0.5
_CHUNK = 1 << 16


class Unavailable(Exception):
    """The files are absent and could not be downloaded (the message says why).

    ``network`` is true when the mirrors were the problem (worth remembering for a while),
    false for a local reason (downloads off, a folder that cannot be created).
    """

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


class _BadDownload(Exception):
    """A transfer ended early or delivered the wrong bytes: worth another try."""


def offline() -> bool:
    """Whether ``XPNET_OFFLINE`` turns downloads off (a value that is no switch is an error)."""
    return bool(env_flag("XPNET_OFFLINE", DataError))


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def mirror_urls(dataset: str, mirrors: Sequence[str] | None) -> list[str]:
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


def download_file(
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
                raise Unavailable(f"cannot write {dest} ({exc.strerror})") from exc
            if not retry or attempt == RETRIES:
                break
            time.sleep(BACKOFF_S * 2**attempt)
        reasons.append(f"{url}: {reason}")
    if not reasons:
        raise Unavailable("no download mirror configured")
    raise Unavailable("; ".join(reasons), network=network)


def failure_marker(dataset: str) -> Path:
    return cache_root() / f".download-failed-{dataset}"


def recent_failure(dataset: str) -> str | None:
    """Why downloads are skipped for now, when every mirror failed a short while ago."""
    marker = failure_marker(dataset)
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


def remember_failure(dataset: str, reason: str) -> None:
    marker = failure_marker(dataset)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(marker, "w") as fh:
            fh.write(reason + "\n")
    except OSError:
        pass  # only saves time on the next offline run

"""Writing files so that a reader never sees a half-written one."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: Temporaries older than this are left over from a killed process, not a running writer.
STALE_AFTER_S = 3600.0


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` as ``open()`` would create it under the process's umask."""
    mask = os.umask(0)  # the only way to read the umask; restored at once
    os.umask(mask)
    return mode & ~mask


def temporary_beside(path: Path, suffix: str) -> tuple[int, str]:
    """A new temporary file next to ``path``, with the permissions ``open()`` would give.

    ``mkstemp`` creates files mode 0600; the renamed result must look like any other file
    the user writes (0644 under the usual umask), so the mode is set here.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
    except OSError:  # a filesystem without modes (FAT): keep what mkstemp gave
        pass
    return fd, tmp


def remove_stale_temporaries(folder: Path, pattern: str, *, older_than: float = STALE_AFTER_S):
    """Delete ``pattern`` matches in ``folder`` not modified for ``older_than`` seconds.

    A process killed while writing (SIGKILL, power loss) cannot clean up after itself; the
    age test leaves the temporaries of writers that are still running alone.
    """
    now = time.time()
    try:
        for tmp in folder.glob(pattern):
            try:
                if now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
            except OSError:
                pass
    except OSError:
        pass


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success.

    An existing file at ``path`` stays untouched if writing fails or is interrupted. The
    new file gets the permissions of a plain ``open(path, "w")`` (0666 minus the umask).
    """
    path = Path(path)
    fd, tmp = temporary_beside(path, ".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Writing files so that a reader never sees a half-written one.

Temporaries are named ``.NAME.<host>-<pid>-<random><suffix>`` beside ``NAME``: the next
writer of ``NAME`` deletes those whose process on this machine is gone (killed mid-write),
and any older than :data:`STALE_AFTER_S` (a writer on another machine sharing the folder).
"""

from __future__ import annotations

import glob
import os
import re
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: Temporaries older than this are left over from a killed process, not a running writer.
STALE_AFTER_S = 3600.0
#: This machine, in temporaries' names: a process id means something only on its host.
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_WRITER = re.compile(r"\.([0-9a-f]{8})-([0-9]+)-[^/]*$")


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
    prefix = f".{path.name}.{_HOST}-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
    except OSError:  # a filesystem without modes (FAT): keep what mkstemp gave
        pass
    return fd, tmp


def remove_stale_temporaries(folder: Path, pattern: str, *, older_than: float = STALE_AFTER_S):
    """Delete ``pattern`` matches in ``folder`` whose writer on this machine has exited, or
    that were not modified for ``older_than`` seconds.

    A process killed while writing (SIGKILL, power loss) cannot clean up after itself; the
    tests leave the temporaries of writers that are still running alone.
    """
    now = time.time()
    try:
        for tmp in folder.glob(pattern):
            try:
                if not _writer_alive(tmp.name) or now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
            except OSError:
                pass
    except OSError:
        pass


def _writer_alive(name: str) -> bool:
    """False only when ``name`` is a temporary of a process of this machine that is gone."""
    m = _WRITER.search(name)
    if m is None or m[1] != _HOST or os.name == "nt":  # Windows' os.kill would end it
        return True
    try:
        os.kill(int(m[2]), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or not a process id
        return True
    return True


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success.

    An existing file at ``path`` stays untouched if writing fails or is interrupted. The
    new file gets the permissions of a plain ``open(path, "w")`` (0666 minus the umask).
    Through a symbolic link the file it points to is replaced, the link kept. Temporaries
    of ``path`` left by a killed writer are deleted first.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    remove_stale_temporaries(path.parent, f".{glob.escape(path.name)}.*.tmp")
    fd, tmp = temporary_beside(path, ".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

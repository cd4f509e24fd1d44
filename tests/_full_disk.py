"""Files that fail as on a full disk: what atomic writes must survive."""

from __future__ import annotations

import errno
import os


class _FullDisk:
    """A file that writes half of what it is given, then fails as on a full disk."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        self._fh.write(data[: len(data) // 2])
        self._fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def fill_the_disk(monkeypatch) -> None:
    """Make every file opened with ``os.fdopen`` (atomic writes use it) fail half-way."""
    real = os.fdopen
    monkeypatch.setattr(
        os, "fdopen", lambda fd, mode="r", *a, **k: _FullDisk(real(fd, mode, *a, **k))
    )

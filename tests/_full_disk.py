"""Files that fail as on a full disk, and a real full disk: what atomic writes must survive."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def real_full_disk(folder, size: str = "256k"):
    """A real tmpfs mounted at ``folder`` (created), unmounted after; ``fill()`` on the
    yielded object takes every free block. Skips (with the reason) unless root may mount."""
    import subprocess

    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root to mount a tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield _Disk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


class _Disk:
    def __init__(self, folder):
        self.folder = folder
        self.filler = folder / "filler"

    def fill(self) -> None:
        """Write a file until the disk is full."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()

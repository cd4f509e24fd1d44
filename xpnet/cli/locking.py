"""One run at a time in an output folder: an advisory lock on ``FOLDER/.lock``.

``fcntl.flock`` ties the lock to the open file, so the system drops it whenever the run
ends: normally, on an error, on Ctrl-C, SIGTERM or SIGKILL. No stale lock is ever left.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from .framework import CliRun, UsageError

__all__ = ["LOCK_NAME", "lock_folder"]

LOCK_NAME = ".lock"


def lock_folder(run: CliRun, folder: Path, *, flag: str = "--out", wait: bool = False) -> None:
    """Hold ``folder``'s lock until the command ends (:attr:`CliRun.resources`).

    Held by another run: a :class:`UsageError` naming it, or with ``wait`` a line saying
    so, then block until it is free (Ctrl-C still stops the wait).
    """
    try:
        import fcntl
    except ImportError:  # no flock on this system: runs are not serialized
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise UsageError(f"{flag} {folder}: cannot create {LOCK_NAME} ({exc.strerror})") from None
    run.resources.callback(os.close, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        if not wait:
            raise UsageError(
                f"{flag} {folder} is in use by another run{holder}; wait for it to end, "
                f"give another {flag}, or add --wait"
            ) from None
        run.line("waiting", f"{flag} {folder} is in use by another run{holder}")
        stage, run.stage = run.stage, f"while waiting for {folder}"
        fcntl.flock(fd, fcntl.LOCK_EX)
        run.stage = stage
    except OSError as exc:  # a file system without locks (some network mounts)
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        run.line("warning", f"{flag} {folder} cannot be locked ({exc.strerror}); "
                 "make sure no other run uses it")  # fmt: skip
        return
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())


def _holder(fd: int) -> str:
    """`` (process N on HOST)`` from what the holder wrote, or nothing."""
    try:
        pid, host = os.pread(fd, 200, 0).decode().split()[:2]
    except (OSError, UnicodeDecodeError, ValueError):
        return ""
    return f" (process {pid} on {host})" if pid.isdigit() else ""

"""How many BLAS threads NumPy's matmuls may use, chosen for the work and the machine.

OpenBLAS starts one thread per core. For the chapter's matmuls (a 100x784 batch times a
784x50 weight, about 8 MFLOP) a second thread costs more to wake than it saves, and when
another process keeps a core busy the threads wait on each other: a loop that takes
seconds alone takes ten times as long. :func:`blas_threads` picks one thread for small work
or a busy machine and every free core otherwise, for the duration of a block, and gives
the user's own ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` the last
word: when one is set, nothing is changed.

Entering the block costs a few microseconds (the thread-pool controller is built once), so
it can wrap each epoch, evaluation or numerical-gradient call.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SMALL_WORK_FLOPS", "blas_threads", "choose_blas_threads", "limit_blas_threads"]

#: Below this many floating-point operations per matmul a second BLAS thread does not pay
#: (OpenBLAS 0.3 on x86-64; see README, "Performance").
SMALL_WORK_FLOPS = 5e7

_USER_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_LOAD_TIME_CONSTANT_S = 60.0  # the kernel's 1-minute load average decays the same way


def user_chose_threads() -> bool:
    """Whether the user fixed the thread count through the environment."""
    return any(os.environ.get(v, "").strip() for v in _USER_VARS)


@functools.cache
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


@functools.cache
def _controller() -> Any:
    # Imported here: threadpoolctl scans the loaded libraries, so do it once, and only
    # when a block asks, not at ``import xpnet``.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


class _OwnLoad:
    """This process's CPU use, averaged as the kernel averages the load (1 minute)."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.cpu = time.process_time()
        self.average = 0.0

    def update(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        dt = wall - self.wall
        if dt > 0.01:  # shorter windows say nothing about the rate
            keep = math.exp(-dt / _LOAD_TIME_CONSTANT_S)
            self.average = keep * self.average + (1 - keep) * (cpu - self.cpu) / dt
            self.wall, self.cpu = wall, cpu
        return self.average


_own_load = _OwnLoad()


class _BusyNow:
    """CPUs other processes used since the last look, from ``/proc/stat`` (Linux).

    The load average lags a new competitor by about a minute; this follows it within one
    look. The first look samples for :data:`_FIRST_SAMPLE_S`; later looks measure the time
    since the previous one (at least :data:`_MIN_WINDOW_S`, else the last figure stands).
    """

    def __init__(self) -> None:
        self.last: tuple[float, float, float] | None = None
        self.value = 0.0

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", "rb") as fh:
                fields = fh.readline().split()[1:]
        except OSError:
            return None
        ticks = [int(v) for v in fields]
        # user..steal; guest time is counted in user already. Less idle and iowait.
        busy = sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
        return time.monotonic(), busy / _CLOCK_TICKS, time.process_time()

    def update(self) -> float | None:
        now = self._read()
        if now is None:
            return None
        if self.last is None:
            self.last = now
            time.sleep(_FIRST_SAMPLE_S)
            now = self._read()
        wall = now[0] - self.last[0]
        if wall >= _MIN_WINDOW_S:
            others = (now[1] - self.last[1]) - (now[2] - self.last[2])
            self.value = max(0.0, others / wall)
            self.last = now
        return self.value


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_FIRST_SAMPLE_S = 0.05
_MIN_WINDOW_S = 0.05
_busy_now = _BusyNow()


def _others_load() -> float:
    """CPUs other processes keep busy: what ``/proc/stat`` showed since the last look (it
    follows a change at once, where the load average still remembers the last minute,
    our own earlier work included), else the load average less our own share."""
    now = _busy_now.update()
    if now is not None:
        return now
    try:
        return max(0.0, os.getloadavg()[0] - _own_load.update())
    except OSError:  # no load figure on this platform: assume an idle machine
        return 0.0


def choose_blas_threads(flops_per_call: float | None = None) -> int | None:
    """The BLAS thread count :func:`blas_threads` would use now.

    Parameters
    ----------
    flops_per_call : float, optional
        Floating-point operations of a typical matmul in the block (``2*m*k*n``). Below
        :data:`SMALL_WORK_FLOPS` one thread is chosen. ``None``: decide by load only.

    Returns
    -------
    int or None
        None when the user's environment fixes the count (nothing is to change); else 1
        for small work or a machine whose other processes keep every core busy, else the
        cores not taken by other processes (at least 1).
    """
    if user_chose_threads():
        return None
    if flops_per_call is not None and flops_per_call < SMALL_WORK_FLOPS:
        return 1
    cores = _cores()
    return max(1, min(cores, round(cores - _others_load())))


@contextmanager
def blas_threads(flops_per_call: float | None = None) -> Iterator[int | None]:
    """Limit BLAS threads for the block, as :func:`choose_blas_threads` decides.

    Never raises the count above what is in force when the block starts (an enclosing
    limit, such as a test run's, stays in force); restores it on exit.

    Parameters
    ----------
    flops_per_call : float, optional
        See :func:`choose_blas_threads`.

    Yields
    ------
    int or None
        The thread count in force inside the block; None when the user's environment
        decides it and nothing was changed.

    Examples
    --------
    >>> with blas_threads(2 * 100 * 784 * 50):  # the chapter's first-layer matmul
    ...     pass
    """
    n = choose_blas_threads(flops_per_call)
    if n is None:
        yield None
        return
    ctl = _controller()
    current = max((lib.num_threads for lib in ctl.lib_controllers), default=n)
    if n >= current:
        yield current
        return
    with ctl.limit(limits=n):
        yield n


def limit_blas_threads(threads: int = 1) -> Any:
    """Limit BLAS threads until the returned object's ``restore_original_limits()``.

    For a whole test run, where every call is small work. Does nothing
    (returns None) when the user's environment fixes the count.

    Returns
    -------
    threadpoolctl.ThreadpoolLimiter or None
    """
    if user_chose_threads():
        return None
    return _controller().limit(limits=threads)

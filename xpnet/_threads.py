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

A library with its own CPU thread pool (torch's intra-op threads, which threadpoolctl
does not govern) follows the same choice, given its Backend; a GPU backend changes
nothing. threadpoolctl is optional: without it the BLAS count is left as it is.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
    """threadpoolctl's BLAS controller, or None without threadpoolctl (nothing is changed)."""
    # Imported here: threadpoolctl scans the loaded libraries, so do it once, and only
    # when a block asks, not at ``import xpnet``.
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


#: Per pool setter: the count xpnet last left the pool at (restored, or set inside a block).
#: A different count at a block's start was set by someone else (``torch.set_num_threads``);
#: from then on that pool is theirs (:data:`_POOL_OWNED`) and left alone.
_POOL_LEFT: dict[Any, int] = {}
_POOL_OWNED: set[Any] = set()


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
def blas_threads(flops_per_call: float | None = None, backend: Any = None) -> Iterator[int | None]:
    """Limit BLAS threads for the block, as :func:`choose_blas_threads` decides.

    Never raises the count above what is in force when the block starts (an enclosing
    limit, such as a test run's, stays in force); restores it on exit.

    Parameters
    ----------
    flops_per_call : float, optional
        See :func:`choose_blas_threads`.
    backend : xpnet.Backend, optional
        The backend the block computes on. A GPU device changes nothing (and imports no
        threadpoolctl); a library's own CPU pool (torch's intra-op threads) is limited to
        the same count, unless its count was changed since xpnet last left it (an
        explicit ``torch.set_num_threads``, which then decides).

    Yields
    ------
    int or None
        The thread count in force inside the block; None when the user's environment
        decides it, or the device is no CPU, and nothing was changed.

    Examples
    --------
    >>> with blas_threads(2 * 100 * 784 * 50):  # the chapter's first-layer matmul
    ...     pass
    """
    if backend is not None and not backend.on_cpu:
        yield None
        return
    n = choose_blas_threads(flops_per_call)
    if n is None:
        yield None
        return
    pool = backend.intra_op_threads() if backend is not None else None
    with ExitStack() as stack:
        in_force = [stack.enter_context(_limit_pool(pool, n))] if pool is not None else []
        ctl = _controller()
        current = None if ctl is None else max((lib.num_threads for lib in ctl.lib_controllers),
                                               default=None)  # fmt: skip
        if current is not None and n < current:
            stack.enter_context(ctl.limit(limits=n))
            current = n
        in_force += [current] if current is not None else []
        yield min(in_force, default=n)


@contextmanager
def _limit_pool(pool: tuple[Any, Any], n: int) -> Iterator[int]:
    """Limit a library's own pool, given as ``(get, set)``, to ``n`` threads for a block."""
    get, set_ = pool
    current = get()
    if _POOL_LEFT.setdefault(set_, current) != current:
        _POOL_OWNED.add(set_)
    if set_ in _POOL_OWNED or n >= current:  # its owner's choice, or already low enough
        yield current
        return
    set_(n)
    _POOL_LEFT[set_] = n  # a nested block finds what this one set
    try:
        yield n
    finally:
        set_(current)
        _POOL_LEFT[set_] = current


def limit_blas_threads(threads: int = 1) -> Any:
    """Limit BLAS threads until the returned object's ``restore_original_limits()``.

    For a whole test run, where every call is small work. Does nothing
    (returns None) when the user's environment fixes the count.

    Returns
    -------
    threadpoolctl.ThreadpoolLimiter or None
        None also without threadpoolctl.
    """
    ctl = None if user_chose_threads() else _controller()
    return None if ctl is None else ctl.limit(limits=threads)

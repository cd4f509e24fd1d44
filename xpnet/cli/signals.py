"""SIGTERM as Ctrl-C, and interrupts that wait for the end of a training step.

A job scheduler or ``kill`` stops a command with SIGTERM; it ends as Ctrl-C does (the same
``interrupted: ...`` line, what finished kept), with exit status 128 + 15.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Interrupts", "Terminated", "deferred_interrupts", "exit_status", "sigterm_interrupts"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled wherever Ctrl-C is."""


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def _raise(signum: int) -> None:
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _main_thread() -> bool:
    # only the main thread may install handlers (an in-process caller may run elsewhere)
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside (the previous handler is restored after)."""
    if not _main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda signum, frame: _raise(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class Interrupts:
    """What :func:`deferred_interrupts` saw: call it to ask whether to stop now."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def resume_raising(self) -> None:
        """Raise the interrupt that was held back, if one was."""
        if self.signum is not None:
            _raise(self.signum)


@contextmanager
def deferred_interrupts() -> Iterator[Interrupts]:
    """Hold Ctrl-C and SIGTERM back: the first only marks the returned :class:`Interrupts`
    (the work polls it and stops where its state is whole); a second one raises at once."""
    seen = Interrupts()
    if not _main_thread():
        yield seen
        return

    def hold(signum: int, frame: object) -> None:
        if seen.signum is not None:
            _raise(signum)
        seen.signum = signum

    before = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)

"""What a command prints: library warnings as ``prog: warning:`` lines, and a standard
output that cannot cost work: a closed pipe (``| head``) or a terminal that cannot show a
character (an ASCII-only locale) never stops a command half-way.

After a broken pipe the rest of the output is dropped and the command goes on; it ends
with one error line and exit status 1. Characters the terminal cannot encode are written
plainly (``±`` as ``+-``).
"""

from __future__ import annotations

import codecs
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from .._progress import write
from ..training import DivergenceWarning

__all__ = ["guarded_stdout", "printing_warnings"]

_PLAIN = {"±": "+-", "×": "x", "…": "...", "→": "->", "—": "-", "–": "-", "≤": "<=",
          "≥": ">=", "·": "*", "²": "^2", "½": "1/2", "−": "-"}  # fmt: skip


def _plain(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(_PLAIN.get(c, "?") for c in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("xpnet-plain", _plain)


class _Guarded:
    """A text stream's stand-in: writes never raise a broken pipe or an encoding error."""

    def __init__(self, inner: IO[str], on_broken: Callable[[], None]) -> None:
        self._inner, self._on_broken, self.broken = inner, on_broken, False

    def write(self, text: str) -> int:
        if self.broken:
            return len(text)
        try:
            return self._inner.write(text)
        except UnicodeEncodeError:
            encoding = getattr(self._inner, "encoding", None) or "ascii"
            return self._inner.write(text.encode(encoding, "xpnet-plain").decode(encoding))
        except BrokenPipeError:
            self._break()
            return len(text)

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self._inner.flush()
        except BrokenPipeError:
            self._break()

    def _break(self) -> None:
        self.broken = True
        # what is still buffered, and the interpreter's flush at exit, go nowhere
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._inner.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a file descriptor (tests)
            pass
        self._on_broken()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def guarded_stdout(on_broken: Callable[[], None]) -> Iterator[None]:
    """``sys.stdout`` guarded inside; ``on_broken()`` once if the reader went away."""
    real = sys.stdout
    if real is None or isinstance(real, _Guarded):
        yield
        return
    guard = _Guarded(real, on_broken)
    sys.stdout = guard
    try:
        yield
    finally:
        guard.flush()
        sys.stdout = real


@contextmanager
def printing_warnings(run: Any) -> Iterator[None]:
    """Show library warnings as ``prog: warning: ...`` lines, in the command's flag wording."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        first, *rest = run.wording(str(message)).splitlines() or [""]
        run.line("warning", first)
        for text in rest:
            write(text, file=sys.stderr)

    with warnings.catch_warnings():
        warnings.filterwarnings("default", category=UserWarning)
        warnings.filterwarnings("default", category=RuntimeWarning)
        warnings.filterwarnings("always", category=DivergenceWarning)
        warnings.showwarning = show
        yield

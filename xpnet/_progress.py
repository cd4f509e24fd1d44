"""Progress bars that degrade to nothing when tqdm is not installed."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any


class _NullBar:
    """Stands in for a tqdm bar: same methods, no output."""

    def __init__(self, iterable: Iterable[Any] | None = None, **_: Any) -> None:
        self._iterable = iterable
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable if self._iterable is not None else ())

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def write(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress(iterable: Iterable[Any] | None = None, *, disable: bool = False, **kwargs: Any):
    """Return a tqdm bar, or a silent stand-in when tqdm is missing or ``disable`` is set."""
    if not disable:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, **kwargs)
    return _NullBar(iterable)


def write(message: str, file: IO[str] | None = None) -> None:
    """Print a line (to ``file``, default stdout) without breaking an active progress bar."""
    file = sys.stdout if file is None else file
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(message, file=file, flush=True)
    else:
        tqdm.write(message, file=file)

"""Progress bars that degrade to nothing when tqdm is not installed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


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


def write(message: str) -> None:
    """Print a line without breaking an active progress bar."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(message, flush=True)
    else:
        tqdm.write(message)

"""The one reader of on/off environment switches (``XPNET_OFFLINE``, ``XPNET_TF32``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

__all__ = ["OFF", "ON", "env_flag", "restored_environ"]

#: Spellings of a switch, compared after stripping and lower-casing.
ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")


def env_flag(var: str, error: type[Exception] = ValueError) -> bool | None:
    """The switch ``var`` as True/False, or None when it is unset or empty.

    Parameters
    ----------
    var : str
        Environment variable name.
    error : exception class
        Raised, with a one-line message naming the variable, for any other value
        (``ture`` is a typo, not "off").
    """
    raw = os.environ.get(var, "").strip().lower()
    if not raw:
        return None
    if raw in ON:
        return True
    if raw in OFF:
        return False
    raise error(f"{var}={raw!r} is not a switch; use 1 or 0")


@contextmanager
def restored_environ(
    names: Iterable[str], set_to: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Set ``set_to`` in ``os.environ``; on exit put back every variable of ``names`` and
    ``set_to`` as it was (unset ones unset), whatever ran inside changed."""
    set_to = set_to or {}
    before = {k: os.environ.get(k) for k in (*names, *set_to)}
    os.environ.update(set_to)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

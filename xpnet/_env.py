"""The one reader of on/off environment switches (``XPNET_OFFLINE``, ``XPNET_TF32``)."""

from __future__ import annotations

import os

__all__ = ["OFF", "ON", "env_flag"]

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

"""Every output of a command checked together, before any work: each can be written, and
no two name the same file (through links too), nor an input the run still needs.

An output given as a symbolic link is written to the file the link points to; the link
stays (see :func:`xpnet._files.atomic_write`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .framework import UsageError, check_output

__all__ = ["check_outputs", "same_file_key"]


def same_file_key(path: Path) -> str:
    """A name shared by every spelling of one file: relative, ``..``, or through links."""
    return os.path.realpath(path)


def check_outputs(
    outputs: Mapping[str, Path | None] | Iterable[tuple[str, Path | None]],
    *,
    inputs: Mapping[str, Path | None] | None = None,
    may_replace: Iterable[tuple[str, str]] = (),
) -> None:
    """Fail (a :class:`UsageError`) unless every output can be written and each is its own file.

    Parameters
    ----------
    outputs : mapping of flag to path or None, or (flag, path) pairs
        The files the command writes (None: not asked for).
    inputs : mapping of flag to path or None, optional
        Files it reads after it has started writing (a checkpoint to resume).
    may_replace : pairs of (output flag, input flag)
        An output that may be the file of that input (``--save`` over ``--resume``).
    """
    allowed = set(may_replace)
    outputs = list(outputs.items() if isinstance(outputs, Mapping) else outputs)
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if path is None:
            continue
        # a link is checked where the write will land: the folder of the file it names
        check_output(flag, Path(os.path.realpath(path)) if path.is_symlink() else path)
        key = same_file_key(path)
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {flag} {path} name the same file; give each output its own path"
            )
        seen[key] = f"{flag} {path}"
    for flag, path in (inputs or {}).items():
        if path is None:
            continue
        for out_flag, path_out in outputs:
            if path_out is None or (out_flag, flag) in allowed:
                continue
            if same_file_key(path_out) == same_file_key(path):
                raise UsageError(
                    f"{out_flag} {path_out} would overwrite {flag} {path}; "
                    "give the output another path"
                )

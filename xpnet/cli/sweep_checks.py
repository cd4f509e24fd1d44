"""What ``xpnet-sweep`` checks before any work: the size of the grid, configs given twice,
and the ``results.jsonl`` a rerun resumes from (a write cut short is repaired, a line
that is not a record is named and skipped, a folder or a link in its place is refused).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .._array import itemsize
from .._memory import gib, memory_text, over_memory
from ..backends import Backend
from ..sweeps import config_key, normalize
from ..sweeps.plan import model_bytes
from .framework import CliRun, UsageError, check_output
from .sweep_results import parse_record, scan_results

__all__ = [
    "OUT_FILES",
    "check_disk_room",
    "check_grid_size",
    "check_model_size",
    "open_results",
    "unique_configs",
]

#: What one finished config costs, measured on records of 5 and 10,000 steps: in memory
#: (parsed back at the end of a sweep, beside the file's bytes) and as a results.jsonl line.
RECORD_MEMORY = (4096, 56)  # bytes per record, per step
RECORD_LINE = (600, 20)
#: The files of an ``--out`` folder.
OUT_FILES = ("run.json", "results.jsonl", "summary.csv", "curves.png", "heatmap.png")
#: Notes on lines that are not records, at most; a count says how many more.
MAX_NOTES = 5


def check_grid_size(count: int, args: Any) -> None:
    """Refuse a sweep whose records cannot fit in memory: ``count`` configs of
    ``args.iters`` steps; the :class:`UsageError` gives the count and the estimate, before
    any config is built."""
    need = count * (RECORD_MEMORY[0] + RECORD_MEMORY[1] * args.iters)
    memory = over_memory(need)
    if memory is not None:
        raise UsageError(
            f"{count:,} configs (the grid times --seeds {args.seeds}) of {args.iters:,} "
            f"steps: their records need about {gib(need)} of memory, more than this "
            f"machine's {gib(memory)}; use fewer values, --seeds or --iters"
        )


def check_disk_room(todo: int, args: Any, results: Path) -> None:
    """Refuse to train ``todo`` configs whose results cannot fit on ``results``' disk."""
    need = todo * (RECORD_LINE[0] + RECORD_LINE[1] * args.iters)
    try:
        free = shutil.disk_usage(results.parent).free
    except OSError:
        return
    if need > free:
        raise UsageError(
            f"{todo:,} configs to train of {args.iters:,} steps: {results.name} would need "
            f"about {memory_text(need)}, but {results.parent} has {memory_text(free)} free; "
            "free some space, or use fewer values, --seeds or --iters, or another --out"
        )


def check_model_size(configs: list[dict[str, Any]], args: Any, backend: Backend) -> None:
    """Refuse a config whose one model (a stack of one) exceeds this machine's memory."""
    size = itemsize(backend.float_dtype, backend.xp)
    for c in {config_key(c): c for c in configs}.values():
        one = model_bytes(normalize(c), 784, 10, args.batch_size, size)
        memory = over_memory(one)
        if memory is not None:
            sizes = ",".join(map(str, normalize(c)["hidden_sizes"]))
            raise UsageError(
                f"hidden layers {sizes} need about {gib(one)} for one model, more than "
                f"this machine's {gib(memory)}; use smaller --hidden-size/--hidden-sizes"
            )


def unique_configs(run: CliRun, configs: list[dict[str, Any]]) -> tuple[list, list[str]]:
    """``configs`` less repeats (``--lr 0.1 0.1``, ``--hidden-size 50 050``), and their keys;
    a warning line counts the repeats, which train once and are reported once."""
    first: dict[str, dict[str, Any]] = {}
    for c in configs:
        first.setdefault(config_key(c), c)
    repeats = len(configs) - len(first)
    if repeats:
        run.line("warning", f"{repeats} of {len(configs)} configs repeat another "
                 "(values given twice); each config trains once")  # fmt: skip
    return list(first.values()), list(first)


def open_results(run: CliRun, path: Path, flag: str = "--out") -> None:
    """Make ``results.jsonl`` safe to resume from and append to, before any work.

    Refused: a folder or a symbolic link in its place. Repaired: a last line without its
    newline (a write cut short by a kill or a full disk) gets it when it is a whole
    record, else is cut off; one line says which. Lines that are not records are named
    (by line number) and skipped; they stay in the file.
    """
    folder = path.parent
    if path.is_symlink():
        raise UsageError(
            f"{flag} {folder}: {path.name} is a symbolic link (to {os.readlink(path)}); "
            "results are appended to their own file: remove the link, or copy the file there"
        )
    if path.exists() and not path.is_file():
        raise UsageError(f"{flag} {folder}: {path.name} is not a file; move it away")
    check_output(flag, path)
    if path.exists():
        _repair_tail(run, path)
    _, notes = scan_results(path)
    for note in notes[:MAX_NOTES]:
        run.line("warning", f"{path} {note}; skipped (its config trains again)")
    if len(notes) > MAX_NOTES:
        run.line("warning", f"{path}: {len(notes) - MAX_NOTES} more lines skipped")


def _repair_tail(run: CliRun, path: Path) -> None:
    with open(path, "r+b") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        tail = data[end:]
        if not tail:
            return
        try:
            parse_record(tail)
        except ValueError:
            fh.truncate(end)
            run.line("warning", f"{path} ended in a torn line ({len(tail)} bytes of a write "
                     "cut short); removed it, that config trains again")  # fmt: skip
        else:
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")
            run.line("warning", f"{path}: its last record lacked its newline; added it")
        fh.flush()
        os.fsync(fh.fileno())

"""The files of an ``xpnet-sweep`` folder: ``run.json``, ``results.jsonl``, ``summary.csv``.

``results.jsonl`` grows by one line per finished config, appended in one write; a rerun
reads it to skip what is done. ``run.json`` holds the run setting the results belong to.
The summary ranks configs, a config's seeds together, by validation accuracy when the
sweep held out validation rows (the test accuracy is then reported, never used to rank),
else by final test accuracy.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write
from .._json import config_json, jsonable
from ..sweeps import SweepRecord, config_key, normalize
from ..sweeps.ranking import final_scores
from .framework import UsageError
from .history import history_from_dict, is_int

__all__ = [
    "append_result",
    "cell",
    "check_run_setting",
    "parse_record",
    "read_results",
    "scan_results",
    "summarize",
    "summary_csv",
    "table",
    "varying",
]


def check_run_setting(path: Path, setting: dict[str, Any]) -> None:
    """Results in one ``--out`` folder come from one run setting (steps, batch size, data,
    dtype, halving rungs): the first run writes it to ``run.json``; a rerun that differs is
    refused. A setting missing from an older ``run.json`` counts as None (its default)."""
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except json.JSONDecodeError:
            before = None
        old = before if isinstance(before, dict) else {}
        if before is None or any(old.get(k) != setting.get(k) for k in {*old, *setting}):
            changed = ", ".join(
                f"{k} {old.get(k)!r} -> {setting.get(k)!r}"
                for k in dict.fromkeys([*setting, *old]) if old.get(k) != setting.get(k)
            )  # fmt: skip
            raise UsageError(
                f"--out {path.parent} holds a sweep run with other settings ({changed}); "
                "give another --out, or the same settings to resume it"
            )
        return
    try:
        with atomic_write(path, "w") as fh:
            fh.write(json.dumps(setting, indent=1) + "\n")
    except OSError as exc:
        raise UsageError(
            f"--out {path.parent}: cannot write {path.name} ({exc.strerror})"
        ) from None


def read_results(path: Path) -> dict[str, SweepRecord]:
    """Finished configs in ``results.jsonl`` by :func:`config_key`; lines that are not
    records (see :func:`scan_results`) are skipped."""
    return scan_results(path)[0]


def scan_results(path: Path) -> tuple[dict[str, SweepRecord], list[str]]:
    """The records of ``results.jsonl`` by :func:`config_key`, and a note for each line
    that is not one (``line 3: not UTF-8``). A last line without its newline (a write cut
    short) is neither: :func:`xpnet.cli.sweep_checks.open_results` repairs it."""
    out: dict[str, SweepRecord] = {}
    notes: list[str] = []
    if not path.is_file():
        return out, notes
    for number, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
        try:
            rec = parse_record(raw)
        except ValueError as exc:
            notes.append(f"line {number}: {exc}")
            continue
        out[config_key(rec.config)] = rec
    return out, notes


def parse_record(raw: bytes) -> SweepRecord:
    """One line of ``results.jsonl`` as a record; a ValueError says what is wrong."""
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(d, dict) or not isinstance(d.get("config"), dict):
        raise ValueError("not a record (an object with a config)")
    history = history_from_dict(d.get("history"))
    wrong = [] if isinstance(d.get("diverged"), bool) else ["diverged"]
    wrong += [] if d.get("stopped_at") is None or is_int(d["stopped_at"]) else ["stopped_at"]
    if wrong:
        raise ValueError(f"wrong types in {', '.join(wrong)}")
    rec = SweepRecord(dict(d["config"]), history, d["diverged"], d.get("stopped_at"))
    try:
        config_key(rec.config)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"its config is not one this version trains ({exc})") from None
    return rec


def append_result(path: Path, record: SweepRecord) -> None:
    """One line per record in one ``write`` to an ``O_APPEND`` file, then fsync.

    A write cut short (a full disk) is taken back, so the file never ends in part of a
    line, and raised as the ``OSError`` it is.
    """
    line = (json.dumps(jsonable(record.as_dict()), allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            rest = memoryview(line)
            while rest:  # a short write is finished by the next, or that one fails
                n = os.write(fd, rest)
                if n == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                rest = rest[n:]
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, size)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def summarize(records: list[SweepRecord], *, halving: bool = False) -> list[dict[str, Any]]:
    """Rows of configs that differ only in seed: mean and std of the final test accuracy
    (and of the validation accuracy, with the mean validation loss, when there is one) of
    the parameters each seed hands over (its best evaluation's with early stopping).

    With ``halving``, each row also has ``stopped_at``: the earliest rung where one of its
    seeds was stopped (its accuracy is the one at that rung), None when all trained to the
    end. Finished rows come first, by accuracy; then stopped rows, those that went further
    first: an accuracy after fewer steps is not ranked against one after all of them.
    """
    groups: dict[str, list[SweepRecord]] = {}
    for r in records:
        c = {k: v for k, v in normalize(r.config).items() if k != "seed"}
        groups.setdefault(config_json(c), []).append(r)
    rows = []
    for key, recs in groups.items():
        scores = [final_scores(r) for r in recs]
        acc = [s["test_acc"] for s in scores]
        row = {**json.loads(key), "seeds": len(recs)}
        if all(s["val_acc"] is not None for s in scores):
            val = [s["val_acc"] for s in scores]
            row |= {"val_acc_mean": float(np.mean(val)), "val_acc_std": float(np.std(val)),
                    "val_loss_mean": float(np.mean([s["val_loss"] for s in scores]))}  # fmt: skip
        row |= {
            "test_acc_mean": float(np.mean(acc)),
            "test_acc_std": float(np.std(acc)),
            "diverged": sum(r.diverged for r in recs),
        }
        if halving:
            stops = [r.stopped_at for r in recs if r.stopped_at is not None]
            row["stopped_at"] = min(stops) if stops else None
        rows.append(row)

    def rank(r: dict[str, Any]) -> tuple[int, int, float, float]:
        stop = r.get("stopped_at")
        if "val_acc_mean" in r:
            score = (-float(np.nan_to_num(r["val_acc_mean"], nan=-1.0)),
                     float(np.nan_to_num(r["val_loss_mean"], nan=np.inf)))  # fmt: skip
        else:
            score = (-float(np.nan_to_num(r["test_acc_mean"], nan=-1.0)), 0.0)
        return (0, 0, *score) if stop is None else (1, -stop, *score)

    rows.sort(key=rank)
    return rows


def varying(rows: list[dict[str, Any]]) -> list[str]:
    """The config keys whose value differs between ``rows``."""
    skip = {"seeds", "test_acc_mean", "test_acc_std", "diverged", "stopped_at",
            "val_acc_mean", "val_acc_std", "val_loss_mean"}  # fmt: skip
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in skip]
    return [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]


def table(rows: list[dict[str, Any]]) -> str:
    """The summary as text: the varying keys, accuracy, seeds, diverged (and stop step)."""
    cols = varying(rows) or ["lr"]
    halving = any("stopped_at" in r for r in rows)
    held = any("val_acc_mean" in r for r in rows)
    head = " ".join(f"{c:>16}" for c in cols) + ("   val acc (mean ± std)" if held else "")
    head += "   test acc (mean ± std)  seeds  diverged"
    lines = [head + ("  stopped at" if halving else "")]
    for r in rows:
        vals = " ".join(f"{cell(r.get(c, '-')):>16}" for c in cols)
        if held:
            vals += f"   {r.get('val_acc_mean', np.nan):.4f} ± {r.get('val_acc_std', np.nan):.4f} "
        stop = f"  {cell(r.get('stopped_at')):>10}" if halving else ""
        lines.append(
            f"{vals}   {r['test_acc_mean']:.4f} ± {r['test_acc_std']:.4f}"
            f"      {r['seeds']:>5}  {r['diverged']:>8}{stop}"
        )
    return "\n".join(lines)


def cell(v: Any) -> str:
    """A value as a table or CSV cell: lists joined by commas."""
    if v is None:  # a config that trained to the end has no stop step: an empty cell
        return ""
    return ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)


def summary_csv(rows: list[dict[str, Any]]) -> str:
    """The summary as CSV text, a column per key of any row."""
    buf = io.StringIO(newline="")
    names = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=names, restval="")
    w.writeheader()
    for r in rows:
        w.writerow({k: cell(v) for k, v in r.items()})
    return buf.getvalue()

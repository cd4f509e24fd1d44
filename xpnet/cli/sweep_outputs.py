"""What ``xpnet-sweep`` hands over besides its tables: the best configs' checkpoints
(``--save-best``) and TensorBoard runs (``--log-dir``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._json import jsonable
from ..sweeps import SweepRecord, config_key, normalize
from ..sweeps.ranking import rank_records, save_record
from .framework import CliRun, write_output
from .sweep_results import cell

__all__ = ["BestKeeper", "run_namer"]


class BestKeeper:
    """Keeps the parameters of the records that may end among the ``k`` best, as they
    finish, and writes those that do as ``OUT/best-1.npz`` ... ``best-k.npz``.

    ``earlier`` are the records an earlier run left in ``results.jsonl`` (they rank, but
    their parameters are gone).
    """

    def __init__(self, k: int, earlier: dict[str, SweepRecord]) -> None:
        self.k = k
        self.records = dict(earlier)
        self.kept: dict[str, SweepRecord] = {}

    def add(self, record: SweepRecord) -> None:
        key = config_key(record.config)
        self.records[key] = record
        self.kept[key] = record
        keys = list(self.records)
        top = {keys[i] for i in rank_records([self.records[k] for k in keys])[: self.k]}
        for k in list(self.kept):
            if k not in top:  # it can no longer be among the k best: its arrays go
                del self.kept[k]

    def write(self, run: CliRun, out: Path, records: list[SweepRecord],
              meta: dict[str, Any]) -> list[Path]:  # fmt: skip
        """Write the ``k`` best of ``records`` (the sweep's, in config order)."""
        paths = []
        for rank, i in enumerate(rank_records(records)[: self.k], start=1):
            key = config_key(records[i].config)
            if key not in self.kept:
                run.line(
                    "warning",
                    f"best-{rank}: config {json.dumps(jsonable(records[i].config))} was trained "
                    "by an earlier run without --save-best, so its parameters are gone; "
                    "rerun it with another --out to save them",
                )
                continue
            path = out / f"best-{rank}.npz"
            record = self.kept[key]
            write_output(run, path, lambda p, r=record: save_record(p, r, meta=meta))
            paths.append(path)
        return paths


def run_namer(configs: list[dict[str, Any]]) -> Callable[[int, SweepRecord], str]:
    """TensorBoard run names: the config keys that vary across the sweep, ``lr=0.1_seed=0``."""
    norm = [normalize(c) for c in configs]
    keys = [k for k in norm[0] if len({json.dumps(jsonable(c.get(k))) for c in norm}) > 1]

    def name(index: int, record: SweepRecord) -> str:
        c = record.config
        text = "_".join(f"{k}={cell(jsonable(c.get(k)))}" for k in keys) or "config"
        return re.sub(r"[^A-Za-z0-9=._,+-]", "-", text)

    return name

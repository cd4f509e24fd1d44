"""The client's side of a sweep on Dask: one task per stack and segment, results as they
finish, halving decided here across every stack."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._json import config_json
from .._progress import progress as progress_bar
from .._progress import write
from ..backends import to_numpy
from ..sweeps.configs import unit_key
from ..sweeps.halving import survivors
from ..sweeps.plan import DEFAULT_MAX_BYTES
from ..sweeps.records import SweepRecord
from ..training import TrainHistory
from .cluster import require_distributed
from .worker import budget_here, exception_line, run_stack_task


class SweepTaskError(RuntimeError):
    """Some configs failed on the cluster; every other config finished.

    Attributes
    ----------
    failures : list of (int, dict, str)
        Index into the sweep's configs, the config, and the error in one line.
    records : list of SweepRecord or None
        The sweep's results in config order, ``None`` where a config failed.
    """

    def __init__(self, failures: list[tuple[int, dict[str, Any], str]],
                 records: list[SweepRecord | None]) -> None:  # fmt: skip
        self.failures = failures
        self.records = records
        lines = [_failure_line(i, c, m) for i, c, m in failures]
        super().__init__(
            f"{len(failures)} of {len(records)} configs failed on the cluster:\n"
            + "\n".join(lines)
        )


def _failure_line(index: int, config: dict[str, Any], message: str) -> str:
    return f"config {index} {config_json(config)}: {message}"


def worker_budget(client: Any, backend_name: str | None, dtype: str | None) -> int:
    """The smallest stack budget over the cluster's workers (each from its own device's
    free memory, see :func:`xpnet.sweeps.stack_budget`). A worker that cannot open its
    backend says so through the tasks, one line per config; if none can,
    :data:`~xpnet.sweeps.plan.DEFAULT_MAX_BYTES`."""
    budgets = client.run(budget_here, backend_name, dtype, on_error="return")
    known = [int(v) for v in budgets.values() if isinstance(v, int)]
    return min(known) if known else DEFAULT_MAX_BYTES


def sweep_on_dask(
    client: Any,
    configs: Sequence[dict[str, Any]],
    groups: Sequence[Sequence[int]],
    data: tuple[Any, ...],
    *,
    iters: int,
    batch_size: int,
    backend_name: str | None = None,
    dtype: str | None = None,
    eval_interval: int | None = None,
    progress: bool = False,
    on_result: Callable[[int, SweepRecord], None] | None = None,
    retries: int = 3,
    output_size: int | None = None,
    halving: Sequence[int] | None = None,
    patience: int | None = None,
    keep_params: bool = False,
) -> list[SweepRecord]:
    """Train the groups as Dask tasks: one task per group, and per segment between
    halving rungs.

    Parameters
    ----------
    client : distributed.Client
    configs : sequence of dict
        Normalized configs (:func:`xpnet.sweeps.normalize`).
    groups : sequence of lists of int
        Indices into ``configs`` that train as one stacked model
        (:func:`xpnet.sweeps.plan_groups`).
    data : (x_train, t_train, x_test, t_test[, x_val, t_val])
        Arrays of any backend (test and validation arrays may be None); sent to every
        worker once as host NumPy arrays.
    iters, batch_size, eval_interval
        As for :func:`xpnet.train`.
    backend_name : str, optional
        The backend every worker trains on; None: each worker's own ``XPNET_BACKEND``
        (and ``XPNET_DEVICE``), e.g. ``cupy`` on GPU workers.
    dtype : str, optional
        ``"float32"`` or ``"float64"``; None: each worker's ``XPNET_DTYPE`` or float32.
    progress : bool
        A progress bar counting finished configs.
    on_result : callable, optional
        ``on_result(index, record)`` in this process as each config's record is complete.
    retries : int
        Times a task that raised something other than a ValueError or TypeError is rerun
        before its group is split into single configs.
    output_size : int, optional
        Outputs of every net (see :func:`xpnet.sweeps.sweep`).
    halving : sequence of int, optional
        Successive-halving rungs (checked, see :func:`xpnet.sweeps.sweep`): every
        group's task trains to the rung, this process ranks the live configs of all
        groups together, and each group's next task goes on with its survivors (on the
        worker that holds the paused stack, or rebuilt on another one).
    patience, keep_params
        As for :func:`xpnet.sweeps.sweep`.

    Returns
    -------
    list of SweepRecord, in the order of ``configs``

    Raises
    ------
    SweepTaskError
        After all other configs finished, when some failed even alone; it lists them and
        holds the finished records.
    """
    distributed = require_distributed()
    from dask.base import tokenize

    configs = [dict(c) for c in configs]
    host = tuple(None if a is None else to_numpy(a) for a in data)
    # The data's name on the workers (their device copies are cached under it) is a hash
    # of the arrays; the scattered copy gets a fresh key, since a hashed key released by
    # a previous sweep may be forgotten by the scheduler after this one re-sent it.
    data_token = tokenize(*host)
    [arrays] = client.scatter([host], broadcast=True, hash=False)
    rungs = [] if halving is None else [int(r) for r in halving]
    options = {"backend_name": backend_name, "dtype": dtype, "iters": int(iters),
               "batch_size": int(batch_size), "eval_interval": eval_interval,
               "output_size": output_size, "patience": patience,
               "keep_params": bool(keep_params)}  # fmt: skip
    run_token = tokenize(data_token, options, rungs, configs)
    units = [unit_key(c) for c in configs]

    results: list[SweepRecord | None] = [None] * len(configs)
    latest: dict[int, SweepRecord] = {}  # each config's record as its last task left it
    failures: list[tuple[int, dict[str, Any], str]] = []
    live: dict[str, tuple[Any, dict[str, Any]]] = {}  # key -> (future, its stack)
    desc = f"sweep on dask ({len(configs)} configs, {len(groups)} stacks)"
    bar = progress_bar(total=len(configs), disable=not progress, unit="config", desc=desc)

    def submit(stack: dict[str, Any], stop: int | None) -> Any:
        key = f"xpnet-stack-{run_token}-{stack['tag']}-{stop}"
        future = client.submit(
            run_stack_task, [configs[i] for i in stack["ids"]], stack["ids"], arrays,
            data_token, family=f"{run_token}-{stack['tag']}", resume=stack["resume"],
            keep=stack["keep"], stop=stop, key=key, retries=int(retries), pure=False,
            **options,
        )  # fmt: skip
        live[key] = (future, stack)
        return future

    def finished(i: int, record: SweepRecord) -> None:
        results[i] = record
        if on_result is not None:
            on_result(i, record)
        bar.update(1)

    stacks = [{"tag": str(n), "ids": list(g), "resume": None, "keep": None}
              for n, g in enumerate(groups)]  # fmt: skip
    try:
        with bar:
            for stop in (*rungs, None):
                going: list[dict[str, Any]] = []
                # with_results: each result comes to this process as soon as its task
                # finishes, so a worker that dies later does not take it with it
                futures = [submit(s, stop) for s in stacks]
                pending = distributed.as_completed(futures, with_results=True,
                                                   raise_errors=False)  # fmt: skip
                for future, out in pending:
                    if future.key not in live:  # seen before: its result is already used
                        continue
                    _, stack = live.pop(future.key)
                    future.release()
                    if isinstance(out, tuple):  # (type, exception, traceback): raised past
                        out = {"error": exception_line(out[1])}  # retries, or killed workers
                    elif isinstance(out, BaseException):  # cancelled
                        out = {"error": exception_line(out)}
                    if "error" in out:
                        if len(stack["ids"]) > 1:  # find the config(s) that fail by themselves
                            for i in stack["ids"]:
                                keep = None if stack["keep"] is None else [
                                    k for k in stack["keep"] if k == i]  # fmt: skip
                                single = {"tag": f"{stack['tag']}.{i}", "ids": [i],
                                          "resume": stack["resume"], "keep": keep}  # fmt: skip
                                pending.add(submit(single, stop))
                            continue
                        [i] = stack["ids"]
                        failures.append((i, configs[i], out["error"]))
                        if progress:
                            write(_failure_line(i, configs[i], out["error"]))
                        bar.update(1)
                        continue
                    staying = set(out["members"])
                    for i, (d, params, state) in out["records"].items():
                        record = SweepRecord.from_dict(d)
                        record.params, record.optimizer_state = params, state
                        latest[i] = record
                        if i not in staying:
                            finished(i, record)
                    if not out["done"]:
                        going.append({**stack, "members": out["members"], "live": out["live"]})
                if stop is None:
                    break
                stacks = _next_segment(going, latest, units, stop)
    finally:
        if live:  # interrupted: stop what has not finished; what finished is kept
            client.cancel([f for f, _ in live.values()])
        arrays.release()
    if failures:
        raise SweepTaskError(sorted(failures, key=lambda f: f[0]), results)
    return results  # type: ignore[return-value]


def _next_segment(going: list[dict[str, Any]], latest: dict[int, SweepRecord],
                  units: list[str], rung: int) -> list[dict[str, Any]]:  # fmt: skip
    """Rank the live configs of every stack at ``rung``; each stack's next task."""
    live = [i for s in going for i in s["live"]]
    histories: list[TrainHistory] = [latest[i].history for i in live]
    kept = {live[r] for r in survivors(histories, np.ones(len(live), dtype=bool),
                                       [units[i] for i in live])}  # fmt: skip
    return [{"tag": s["tag"], "ids": s["members"], "resume": rung,
             "keep": [i for i in s["members"] if i in kept]} for s in going]  # fmt: skip

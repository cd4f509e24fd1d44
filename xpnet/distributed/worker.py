"""What runs on a Dask worker: the data on its device once, one segment of a stack per
task, and the stacks waiting between halving rungs, parked on the worker's host."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..backends import as_backend
from ..sweeps.device import DeviceData, device_data
from ..sweeps.plan import stack_budget
from ..sweeps.stacked import StackedGroup

#: Per worker process: (data token, backend name, dtype, outputs) -> DeviceData, newest last.
_DEVICE_DATA: OrderedDict[tuple, DeviceData] = OrderedDict()
_DEVICE_DATA_LOCK = threading.Lock()
#: Data sets kept on a worker's device at once (two sweeps in a row over different data).
_KEEP = 2

#: Per worker process: stacks paused at a rung, by task family, newest last. One that is
#: not here (evicted, or its worker died) is rebuilt by training its configs again.
_STACKS: OrderedDict[str, tuple[StackedGroup, list[int]]] = OrderedDict()
_STACKS_LOCK = threading.Lock()
_KEEP_STACKS = 64


def worker_data(token: str, arrays: tuple, backend_name: str | None,
                dtype: str | None, output_size: int | None = None) -> DeviceData:  # fmt: skip
    """This process's device copy of a sweep's data (made once per data set)."""
    key = (token, backend_name, dtype, output_size)
    with _DEVICE_DATA_LOCK:
        if key in _DEVICE_DATA:
            _DEVICE_DATA.move_to_end(key)
            return _DEVICE_DATA[key]
        x_train, t_train, x_test, t_test, *val = arrays
        x_val, t_val = val if val else (None, None)
        data = device_data(x_train, t_train, x_test, t_test, backend=backend_name, dtype=dtype,
                           output_size=output_size, x_val=x_val, t_val=t_val)  # fmt: skip
        _DEVICE_DATA[key] = data
        while len(_DEVICE_DATA) > _KEEP:
            _DEVICE_DATA.popitem(last=False)
        return data


def run_stack_task(
    configs: list[dict[str, Any]], ids: list[int], arrays: tuple, token: str, *,
    family: str, resume: int | None, keep: Sequence[int] | None, stop: int | None,
    backend_name: str | None, dtype: str | None, iters: int, batch_size: int,
    eval_interval: int | None, output_size: int | None = None,
    patience: int | None = None, keep_params: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One Dask task: one segment of a stacked group, from rung ``resume`` (None: the
    start) through the evaluation at ``stop`` (None: the end).

    ``configs`` (the sweep's configs ``ids``) are the stack's members at ``resume``,
    ``keep`` the ids that go on past it. The stack paused there is taken from this
    process when it waits here; else it is built again from ``configs`` and trained to
    ``resume`` (each member's record does not depend on the others: the same records,
    computed again, to the rounding of a matrix product of another width).

    Returns ``{"records": {id: (record dict, params, optimizer state)} for every id of
    ``ids``, "members": ids still in the stack, "live": ids still training, "done"}``;
    a ValueError or TypeError (a config or argument the code rejects) comes back as
    ``{"error": line}``: it would fail the same way on any worker, so it is not retried.
    Anything else (out of memory, a backend that cannot start) raises, and Dask retries it.
    """
    data = worker_data(token, arrays, backend_name, dtype, output_size)
    kw = {"iters": iters, "batch_size": batch_size, "eval_interval": eval_interval,
          "patience": patience, "keep_params": keep_params}  # fmt: skip
    try:
        with _STACKS_LOCK:
            group, built = _STACKS.pop(family, (None, []))
        if group is None or group.at != resume:
            group, built = StackedGroup(configs, data, **kw), list(ids)
            if resume is not None:
                group.train_to(resume)
        if resume is not None:
            wanted = set(keep or ())
            group.cut([p for p, i in enumerate(built) if i in wanted], resume)
        done = group.train_to(stop)
    except (ValueError, TypeError) as e:
        return {"error": exception_line(e)}
    asked = set(ids)
    out = {
        "records": {i: (r.as_dict(), r.params, r.optimizer_state)
                    for i, r in zip(built, group.records, strict=True) if i in asked},
        "members": [] if done else [built[p] for p in group.members],
        "live": [] if done else [built[p] for p in group.live()],
        "done": done,
    }  # fmt: skip
    if not done:
        group.park()
        with _STACKS_LOCK:
            _STACKS[family] = (group, built)
            while len(_STACKS) > _KEEP_STACKS:
                _STACKS.popitem(last=False)
    return out


def budget_here(backend_name: str | None, dtype: str | None) -> int:
    """The stack budget on this worker's device (see :func:`xpnet.sweeps.stack_budget`)."""
    return stack_budget(as_backend(backend_name, dtype))


def exception_line(exc: BaseException) -> str:
    """An error in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

"""The sweep driver: check everything, plan the stacks, train them here or on Dask."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._array import itemsize
from .._progress import progress as progress_bar
from ..backends import Backend
from ..training import check_labels, check_run_args
from .configs import normalize, unit_key
from .device import device_data, output_size_of, resolve_backend
from .halving import check_rungs
from .plan import DEFAULT_MAX_BYTES, plan_groups
from .records import SweepRecord
from .stacked import run_group


def sweep(
    configs: Iterable[dict[str, Any]],
    x_train: Any,
    t_train: Any,
    x_test: Any = None,
    t_test: Any = None,
    *,
    iters: int = 10_000,
    batch_size: int = 100,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    eval_interval: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_models: int | None = None,
    progress: bool = False,
    on_result: Callable[[int, SweepRecord], None] | None = None,
    client: Any = None,
    output_size: int | None = None,
    halving: Sequence[int] | None = None,
) -> list[SweepRecord]:
    """Train every config; configs that can share arrays train as one stacked model.

    Parameters
    ----------
    configs : iterable of dict
        Keys: ``lr``, ``hidden_size`` or ``hidden_sizes``, ``activation``,
        ``weight_init_std``, ``weight_decay``, ``optimizer`` (a name) and its
        hyperparameters (``momentum``, ``beta1``, ``beta2``, ``decay_rate``), ``seed``;
        missing keys take :data:`DEFAULTS` (the chapter's recipe).
    x_train, t_train, x_test, t_test, iters, batch_size, eval_interval
        As for :func:`xpnet.train`.
    backend, dtype
        Where the stacks train (default :func:`xpnet.get_backend`).
    max_bytes, max_models : int, optional
        Bounds on one stacked group.
    progress : bool
        One progress bar over every step of every group.
    on_result : callable, optional
        ``on_result(index, record)`` as each config finishes (its group's end).
    client : dask.distributed.Client, optional
        Run the groups as tasks on a Dask cluster (see :mod:`xpnet.distributed`).
    output_size : int, optional
        Outputs of every net; default the one-hot width of ``t_train`` or its largest
        label + 1 (10 for MNIST), as :class:`xpnet.TwoLayerNet` would be built for it.
    halving : sequence of int, optional
        Successive-halving rungs: increasing evaluation steps (0-based multiples of the
        evaluation interval) before the last step. At each rung every stack keeps
        ``ceil(n / 2)`` of its n live configs (a config's seeds go on or stop together),
        ranked by the train accuracy just evaluated (mean over seeds; the test set never
        chooses), then by the lower mean training loss since the evaluation before, then
        by config order; diverged members always go (``stopped_at`` set at the rung). The
        others stop there (:attr:`SweepRecord.stopped_at`) and the stack shrinks to the
        survivors. None or empty: every config trains to the end.

    Returns
    -------
    list of SweepRecord, in the order of ``configs``
    """
    configs = [normalize(c) for c in configs]
    if not configs:
        return []
    check_run_args(x_train, t_train, x_test, t_test, iters=iters, batch_size=batch_size)
    b = resolve_backend(backend, dtype)
    size = itemsize(b.float_dtype, b.xp)
    if eval_interval is not None and (int(eval_interval) != eval_interval or eval_interval < 1):
        raise ValueError(f"eval_interval must be a positive integer, got {eval_interval!r}")
    interval = eval_interval or max(int(x_train.shape[0]) // batch_size, 1)
    rungs = check_rungs(halving, iters=iters, interval=interval)
    classes = output_size_of(t_train, output_size)
    check_labels(t_train, "t_train", classes)
    if t_test is not None:
        check_labels(t_test, "t_test", classes)
    groups = plan_groups(
        configs,
        input_size=int(x_train.shape[1]),
        output_size=classes,
        batch_size=batch_size,
        itemsize=size,
        max_bytes=max_bytes,
        max_models=max_models,
    )
    single = sum(len({unit_key(configs[i]) for i in g}) < 2 for g in groups) if rungs else 0
    if single:
        warnings.warn(
            f"halving: {single} of {len(groups)} stacks hold a single config (with its "
            "seeds), which no rung can cut; configs compete only within their stack (same "
            "layer sizes, activation and optimizer, split by max_models and max_bytes)",
            stacklevel=2,
        )
    if client is not None:
        from ..distributed import sweep_on_dask

        return sweep_on_dask(
            client,
            configs,
            groups,
            (x_train, t_train, x_test, t_test),
            iters=iters,
            batch_size=batch_size,
            backend_name=None if backend is None else b.name,
            dtype=b.dtype_name,
            eval_interval=eval_interval,
            progress=progress,
            on_result=on_result,
            output_size=classes,
            halving=rungs,
        )
    results: list[SweepRecord | None] = [None] * len(configs)
    data = device_data(x_train, t_train, x_test, t_test, backend=b, output_size=classes)
    bar = progress_bar(
        total=iters * len(groups),
        disable=not progress,
        unit="step",
        desc=f"sweep ({len(configs)} configs, {len(groups)} stacks)",
    )
    with bar:
        for members in groups:
            records = run_group(
                [configs[i] for i in members],
                data,
                iters=iters,
                batch_size=batch_size,
                eval_interval=eval_interval,
                on_steps=bar.update,
                halving=rungs,
            )
            for i, rec in zip(members, records, strict=True):
                results[i] = rec
                if on_result is not None:
                    on_result(i, rec)
    return results  # type: ignore[return-value]

"""The sweep driver: check everything, plan the stacks, train them here or on Dask."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .._array import itemsize
from .._checks import check_labels, check_run_args
from .._progress import progress as progress_bar
from ..backends import Backend, as_backend
from ..validation import check_validation, split_validation
from .configs import normalize, unit_key
from .device import DeviceData, device_data, output_size_of
from .halving import check_rungs, survivors
from .plan import plan_groups, stack_budget
from .records import SweepRecord
from .stacked import StackedGroup


def sweep(
    configs: Iterable[dict[str, Any]],
    x_train: Any,
    t_train: Any,
    x_test: Any = None,
    t_test: Any = None,
    *,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    iters: int = 10_000,
    batch_size: int = 100,
    eval_interval: int | None = None,
    max_bytes: int | None = None,
    max_models: int | None = None,
    progress: bool = False,
    on_result: Callable[[int, SweepRecord], None] | None = None,
    client: Any = None,
    output_size: int | None = None,
    halving: Sequence[int] | None = None,
    validation: float | None = None,
    patience: int | None = None,
    keep_params: bool = False,
    compile: bool | str = False,
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
    max_bytes : int, optional
        Memory bound of one stacked group; default :func:`~xpnet.sweeps.plan.stack_budget`,
        a share of the device's free memory (of the smallest worker's with ``client``).
    max_models : int, optional
        Members of one stacked group at most.
    progress : bool
        One progress bar over every step of every group.
    on_result : callable, optional
        ``on_result(index, record)`` as each config's record is complete.
    client : dask.distributed.Client, optional
        Run the groups as tasks on a Dask cluster (see :mod:`xpnet.distributed`).
    output_size : int, optional
        Outputs of every net; default the one-hot width of ``t_train`` or its largest
        label + 1 (10 for MNIST), as :class:`xpnet.TwoLayerNet` would be built for it.
    halving : sequence of int, optional
        Successive-halving rungs: increasing evaluation steps (0-based multiples of the
        evaluation interval) before the last step. At each rung every stack trains to it,
        then the configs still training, over all stacks, are ranked
        (:func:`~xpnet.sweeps.halving.survivors`: validation score when there is a
        validation set, else train accuracy; the test set never chooses) and
        ``ceil(n / 2)`` of the n go on (a config's seeds go on or stop together). The
        others stop there (:attr:`SweepRecord.stopped_at`; diverged members too) and
        each stack shrinks to its survivors, so how the configs are split into stacks
        does not change who survives. None or empty: every config trains to the end.
    validation : float, optional
        Hold out this fraction of the training rows, the same rows for every config
        (:func:`xpnet.validation.split_validation`); histories carry ``val_acc`` and
        ``val_loss``, halving ranks on them, and the test set is evaluated once per
        config, on the parameters it hands over (``history.final_test_acc``).
    patience : int, optional
        Early stopping per member (needs ``validation``), as :func:`xpnet.train`'s: a
        stopped member is frozen in its stack with its best evaluation's parameters.
    keep_params : bool
        Each record carries the parameters and optimizer state its own
        :func:`xpnet.train` run would end with (:attr:`SweepRecord.params`, host arrays).
    compile : {False, True, "auto"}
        Compile each stack's training step, as :func:`xpnet.train`'s ``compile`` (one
        compilation per stack size: a halving cut compiles again). Not with ``client``.

    Returns
    -------
    list of SweepRecord, in the order of ``configs``
    """
    configs = [normalize(c) for c in configs]
    if not configs:
        return []
    check_run_args(x_train, t_train, x_test, t_test, iters=iters, batch_size=batch_size)
    check_validation(validation, patience, int(x_train.shape[0]))
    b = as_backend(backend, dtype)
    if eval_interval is not None and (int(eval_interval) != eval_interval or eval_interval < 1):
        raise ValueError(f"eval_interval must be a positive integer, got {eval_interval!r}")
    classes = output_size_of(t_train, output_size)
    check_labels(t_train, "t_train", classes)
    if t_test is not None:
        check_labels(t_test, "t_test", classes)
    x_val = t_val = None
    if validation is not None:
        x_train, t_train, x_val, t_val = split_validation(x_train, t_train, validation)
    interval = eval_interval or max(int(x_train.shape[0]) // batch_size, 1)
    rungs = check_rungs(halving, iters=iters, interval=interval)
    if rungs and len({unit_key(c) for c in configs}) < 2:
        warnings.warn(
            "halving: the sweep holds a single config (with its seeds), which no rung can "
            "cut; give more configs, or no rungs",
            stacklevel=2,
        )
    if max_bytes is None:
        if client is not None:
            from ..distributed import worker_budget

            max_bytes = worker_budget(client, None if backend is None else b.name, b.dtype_name)
        else:
            max_bytes = stack_budget(b)
    groups = plan_groups(
        configs,
        input_size=int(x_train.shape[1]),
        output_size=classes,
        batch_size=batch_size,
        itemsize=itemsize(b.float_dtype, b.xp),
        max_bytes=max_bytes,
        max_models=max_models,
        best=patience is not None,
    )
    options = {"iters": iters, "batch_size": batch_size, "eval_interval": eval_interval,
               "halving": rungs, "patience": patience, "keep_params": keep_params}  # fmt: skip
    if client is not None:
        from ..distributed import sweep_on_dask

        if compile is True:
            raise ValueError("compile=True: stacks on a Dask cluster train eagerly; use "
                             "compile=False or 'auto' with client")  # fmt: skip

        return sweep_on_dask(
            client,
            configs,
            groups,
            (x_train, t_train, x_test, t_test, x_val, t_val),
            backend_name=None if backend is None else b.name,
            dtype=b.dtype_name,
            progress=progress,
            on_result=on_result,
            output_size=classes,
            **options,
        )
    results: list[SweepRecord | None] = [None] * len(configs)
    data = device_data(x_train, t_train, x_test, t_test, backend=b, output_size=classes,
                       x_val=x_val, t_val=t_val)  # fmt: skip
    bar = progress_bar(
        total=iters * len(groups),
        disable=not progress,
        unit="step",
        desc=f"sweep ({len(configs)} configs, {len(groups)} stacks)",
    )

    def done(g: int, m: int, record: SweepRecord) -> None:
        results[groups[g][m]] = record
        if on_result is not None:
            on_result(groups[g][m], record)

    with bar:
        run_stacks([[configs[i] for i in g] for g in groups], data, on_steps=bar.update,
                   on_record=done, compile=compile, **options)  # fmt: skip
    return results  # type: ignore[return-value]


def run_stacks(
    stacks: Sequence[Sequence[dict[str, Any]]],
    data: DeviceData,
    *,
    iters: int,
    batch_size: int,
    eval_interval: int | None = None,
    halving: Sequence[int] | None = None,
    patience: int | None = None,
    keep_params: bool = False,
    on_steps: Callable[[int], Any] | None = None,
    on_record: Callable[[int, int, SweepRecord], None] | None = None,
    compile: bool | str = False,
) -> list[list[SweepRecord]]:
    """Train stackable groups of configs, one after another, with halving across them.

    Without rungs each stack trains start to end before the next one starts. With
    rungs every stack trains to the rung (the others wait on the host, see
    :meth:`StackedGroup.park`), the configs still training are ranked together, and each
    stack goes on with its survivors.

    ``on_record(stack, index, record)`` as each record is complete. Returns the records,
    one list per stack, in its configs' order.
    """
    n_train = int(data.x.shape[0])
    interval = eval_interval or max(n_train // batch_size, 1)
    rungs = check_rungs(halving, iters=iters, interval=interval)
    kw = {"iters": iters, "batch_size": batch_size, "eval_interval": eval_interval,
          "patience": patience, "keep_params": keep_params, "compile": compile}  # fmt: skip
    groups: list[StackedGroup | None] = [None] * len(stacks)
    records: list[list[SweepRecord] | None] = [None] * len(stacks)
    reported = [set() for _ in stacks]
    cuts: dict[int, list[int]] = {}
    units = [[unit_key(normalize(c)) for c in s] for s in stacks]

    def report(g: int) -> None:
        """Hand on the records that are complete; let go of a stack that is done."""
        group = groups[g]
        staying = set() if group.done else set(group.members)
        for m, rec in enumerate(group.records):
            if m not in staying and m not in reported[g]:
                reported[g].add(m)
                if on_record is not None:
                    on_record(g, m, rec)
        if group.done:
            records[g], groups[g] = group.records, None

    for rung_index, stop in enumerate((*rungs, None)):
        for g, configs in enumerate(stacks):
            if records[g] is not None:
                continue
            if groups[g] is None:
                groups[g] = StackedGroup(list(configs), data, **kw)
            group = groups[g]
            if g in cuts:
                group.cut(cuts.pop(g), rungs[rung_index - 1])
                if group.done and on_steps is not None:
                    on_steps(iters - group.steps_done)
            if not group.done:
                group.train_to(stop, on_steps)
            report(g)
            if groups[g] is not None and len(stacks) > 1:
                group.park()
        if stop is None:
            break
        live = [(g, m) for g, group in enumerate(groups) if group is not None
                for m in group.live()]  # fmt: skip
        histories = [groups[g].records[m].history for g, m in live]
        kept = survivors(histories, np.ones(len(live), dtype=bool),
                         [units[g][m] for g, m in live])  # fmt: skip
        for g, group in enumerate(groups):
            if group is not None:
                cuts[g] = [live[r][1] for r in kept if live[r][0] == g]
    return records  # type: ignore[return-value]


def run_group(
    configs: list[dict[str, Any]],
    data: DeviceData,
    *,
    iters: int,
    batch_size: int,
    eval_interval: int | None = None,
    on_steps: Callable[[int], Any] | None = None,
    halving: Sequence[int] | None = None,
    patience: int | None = None,
    keep_params: bool = False,
) -> list[SweepRecord]:
    """Train one stackable group of normalized configs as one model; a record each
    (``halving`` rungs cut it to its better half at each rung, see :func:`sweep`)."""
    return run_stacks([configs], data, iters=iters, batch_size=batch_size,
                      eval_interval=eval_interval, on_steps=on_steps, halving=halving,
                      patience=patience, keep_params=keep_params)[0]  # fmt: skip

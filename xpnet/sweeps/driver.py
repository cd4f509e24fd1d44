"""Many configurations trained at once as one stacked model.

Configs that can share arrays (same layer sizes, activation and optimizer kind) train as
one model whose parameters carry a leading model axis: ``W1`` of shape (K, D, H). Their
per-model hyperparameters (learning rate, weight decay, momentum, ...) become arrays of
shape (K, 1, 1), and every member computes what :func:`xpnet.train` computes for that
config alone (in float64 to the last bits; in float32 hyperparameters that differ across
members are rounded to float32, as arrays, where a single run keeps them as Python
floats): the same initial weights (host RNG, the config's seed), the same batches (configs
with one seed share each batch), the same updates.

Successive halving (``halving=`` rung steps) keeps the better half of each stack at each
rung and cuts the stack to it; a dropped config's record is what its own run recorded up
to that rung's evaluation, and a survivor's what its own run records to the end.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_writeable_array

from ._array import itemsize, one_hot
from ._progress import progress as progress_bar
from ._threads import blas_threads
from .backends import Backend, get_backend, to_numpy
from .mlp import ACTIVATIONS, correct_count, loss_and_grads
from .nets import EVAL_CHUNK, init_params, init_std
from .optimizers import OPTIMIZERS, SGD, get_optimizer
from .scaling import input_scale
from .training import (
    TrainHistory,
    _check_args,
    _check_labels,
    batch_blocks,
    batch_chunks,
    is_runaway,
)

__all__ = [
    "DEFAULTS",
    "SweepRecord",
    "check_rungs",
    "config_key",
    "grid",
    "plan_groups",
    "run_group",
    "sample",
    "sweep",
]

#: The chapter's recipe: what a config's missing keys mean.
DEFAULTS: dict[str, Any] = {
    "lr": 0.1,
    "hidden_sizes": (50,),
    "activation": "sigmoid",
    "weight_init_std": 0.01,
    "weight_decay": 0.0,
    "optimizer": "sgd",
    "seed": 0,
}

#: Default memory bound of one stacked group (parameters, optimizer state, activations).
DEFAULT_MAX_BYTES = 1 << 30

#: Config keys :func:`sample` may draw from a (low, high) range.
_CONTINUOUS = {"lr", "weight_decay", "weight_init_std", "momentum", "beta1", "beta2",
               "decay_rate"}  # fmt: skip

_KEYS = set(DEFAULTS) | {"hidden_size"} | {h for c in OPTIMIZERS.values() for h in c.HYPER}


@dataclass
class SweepRecord:
    """One config's result.

    Attributes
    ----------
    config : dict
        The config as given, with defaults filled in.
    history : TrainHistory
        Exactly what :func:`xpnet.train` records for that config alone (up to the
        evaluation where it diverged, if it did, or the rung where it was stopped).
    diverged : bool
        Its loss became NaN/inf or ran far above where it started; its parameters were
        frozen there while the rest of its stack trained on.
    stopped_at : int or None
        The successive-halving rung (a step) where it was dropped; None when it trained
        to the last step.
    """

    config: dict[str, Any]
    history: TrainHistory = field(default_factory=TrainHistory)
    diverged: bool = False
    stopped_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "history": self.history.as_dict(),
            "diverged": self.diverged,
            "stopped_at": self.stopped_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRecord:
        # lines written before halving existed have no "stopped_at": they ran to the end
        stopped = d.get("stopped_at")
        return cls(
            dict(d["config"]),
            TrainHistory(**d["history"]),
            bool(d["diverged"]),
            None if stopped is None else int(stopped),
        )


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """A config with the chapter's defaults filled in; unknown keys are an error."""
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    c = {**DEFAULTS, **config}
    if "hidden_size" in config:
        if "hidden_sizes" in config:
            raise ValueError("give hidden_size or hidden_sizes, not both")
        c["hidden_sizes"] = (int(config["hidden_size"]),)
        del c["hidden_size"]
    hs = c["hidden_sizes"]
    c["hidden_sizes"] = (
        (int(hs),) if isinstance(hs, int | np.integer) else tuple(int(h) for h in hs)
    )
    opt = str(c["optimizer"]).lower()
    if opt not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {c['optimizer']!r}; choose one of: {', '.join(OPTIMIZERS)}"
        )
    c["optimizer"] = opt
    hyper = {k: c[k] for k in OPTIMIZERS[opt].HYPER if k in c}
    extra = sorted(k for k in c if k in _optimizer_keys() and k not in OPTIMIZERS[opt].HYPER)
    if extra:
        raise ValueError(
            f"optimizer {opt!r} takes {', '.join(OPTIMIZERS[opt].HYPER)}; not {', '.join(extra)}"
        )
    get_optimizer(opt, **hyper)  # validates the values
    for h in OPTIMIZERS[opt].HYPER:  # the optimizer's own defaults, written out
        c.setdefault(h, _default_hyper(OPTIMIZERS[opt], h))
    if c["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {c['activation']!r}"
        )
    if not c["hidden_sizes"] or min(c["hidden_sizes"]) < 1:
        raise ValueError(f"hidden sizes must be positive integers, got {c['hidden_sizes']}")
    wd = c["weight_decay"]
    if not (_is_number(wd) and math.isfinite(wd) and wd >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {wd!r}")
    init_std(c["weight_init_std"], 1)  # a positive number or a known name, checked now
    return c


def _optimizer_keys() -> set[str]:
    return {h for cls in OPTIMIZERS.values() for h in cls.HYPER} - {"lr"}


def config_key(config: dict[str, Any]) -> str:
    """A canonical string for a normalized config (resume matches on it)."""
    return json.dumps(_jsonable(normalize(config)), sort_keys=True)


def _jsonable(c: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in c.items()}


def grid(**lists: Any) -> list[dict[str, Any]]:
    """The Cartesian product of the given values: ``grid(lr=[0.1, 1], seed=[0, 1])``.

    A value that is not a list or tuple is one fixed value.
    """
    keys = list(lists)
    values = [v if isinstance(v, list | tuple) else [v] for v in lists.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def sample(n: int, *, seed: int = 0, **space: Any) -> list[dict[str, Any]]:
    """``n`` random configs: a list is a choice; for a continuous hyperparameter (``lr``,
    ``weight_decay``, ``momentum``, ...) a ``(low, high)`` tuple of positive numbers is
    log-uniform between them (``lr=(1e-3, 1.0)``); anything else is fixed
    (``hidden_sizes=(100, 100)`` is two layers)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n)):
        c = {}
        for k, v in space.items():
            if isinstance(v, list):
                c[k] = v[int(rng.integers(len(v)))]
            elif (
                k in _CONTINUOUS
                and isinstance(v, tuple)
                and len(v) == 2
                and all(_is_number(e) for e in v)
            ):
                lo, hi = float(v[0]), float(v[1])
                if not 0 < lo <= hi:
                    raise ValueError(f"{k}: a (low, high) range needs 0 < low <= high, got {v}")
                c[k] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            else:
                c[k] = v
        out.append(c)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _group_key(c: dict[str, Any]) -> tuple:
    return (c["hidden_sizes"], c["activation"], c["optimizer"])


def _model_bytes(c: dict[str, Any], d: int, classes: int, batch: int, itemsize: int) -> int:
    sizes = (d, *c["hidden_sizes"], classes)
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    slots = len(OPTIMIZERS[c["optimizer"]].SLOTS)
    widest = max(sizes[1:])
    # params, grads, optimizer state, a saved copy; activations of a batch and an eval chunk
    return itemsize * ((3 + slots) * n_params + 6 * (batch + EVAL_CHUNK) * widest)


def plan_groups(
    configs: Sequence[dict[str, Any]],
    *,
    input_size: int,
    output_size: int,
    batch_size: int = 100,
    itemsize: int = 4,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_models: int | None = None,
) -> list[list[int]]:
    """Which configs train together: lists of indices into ``configs``, in order.

    Configs share a group when their layer sizes, activation and optimizer match; a group
    is split where it would exceed ``max_bytes`` or ``max_models``.
    """
    norm = [normalize(c) for c in configs]
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(norm):
        groups.setdefault(_group_key(c), []).append(i)
    out = []
    for members in groups.values():
        per = _model_bytes(norm[members[0]], input_size, output_size, batch_size, itemsize)
        k = max(1, int(max_bytes) // per)
        if max_models is not None:
            k = max(1, min(k, int(max_models)))
        out.extend(members[s : s + k] for s in range(0, len(members), k))
    return out


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
    _check_args(x_train, t_train, x_test, t_test, iters, batch_size, 0.1, "backprop")
    b = backend if isinstance(backend, Backend) else get_backend(backend, None, dtype)
    if dtype is not None and isinstance(backend, Backend):
        b = b.with_dtype(dtype)
    size = itemsize(b.float_dtype, b.xp)
    if eval_interval is not None and (int(eval_interval) != eval_interval or eval_interval < 1):
        raise ValueError(f"eval_interval must be a positive integer, got {eval_interval!r}")
    interval = eval_interval or max(int(x_train.shape[0]) // batch_size, 1)
    rungs = check_rungs(halving, iters=iters, interval=interval)
    classes = _classes(t_train, output_size)
    probe = _LabelProbe(classes)
    _check_labels(probe, t_train, "t_train")
    if t_test is not None:
        _check_labels(probe, t_test, "t_test")
    groups = plan_groups(
        configs,
        input_size=int(x_train.shape[1]),
        output_size=classes,
        batch_size=batch_size,
        itemsize=size,
        max_bytes=max_bytes,
        max_models=max_models,
    )
    single = sum(len({_unit(configs[i]) for i in g}) < 2 for g in groups) if rungs else 0
    if single:
        warnings.warn(
            f"halving: {single} of {len(groups)} stacks hold a single config (with its "
            "seeds), which no rung can cut; configs compete only within their stack (same "
            "layer sizes, activation and optimizer, split by max_models and max_bytes)",
            stacklevel=2,
        )
    if client is not None:
        from .distributed import sweep_on_dask

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
    data = _to_device(b, x_train, t_train, x_test, t_test, classes)
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


def _classes(t: Any, output_size: int | None = None) -> int:
    """The nets' output size: given, else the one-hot width or the largest label + 1."""
    if output_size is not None:
        return int(output_size)
    if t.ndim == 2:
        return int(t.shape[1])
    host = to_numpy(t)
    return int(host.max()) + 1 if host.size else 1


@dataclass
class _LabelProbe:
    """What :func:`xpnet.training._check_labels` needs of a net: its output size."""

    output_size: int


@dataclass
class DeviceData:
    """A data set on one backend's device, ready for :func:`run_group`."""

    backend: Backend
    x: Any
    labels: Any
    t_hot: Any
    test: tuple[Any, Any] | None
    classes: int


def _to_device(b: Backend, x, t, x_test, t_test, classes: int) -> DeviceData:
    x_dev, t_dev = b.asarray(x), b.asarray(t)
    xp = b.xp
    if t_dev.ndim == 2:
        labels = xp.argmax(t_dev, axis=-1)
        t_hot = xp.astype(t_dev, b.float_dtype)
    else:
        labels = t_dev
        t_hot = one_hot(t_dev, classes, b.float_dtype, xp)
    test = None
    if x_test is not None:
        tt = b.asarray(t_test)
        test = (b.asarray(x_test), xp.argmax(tt, axis=-1) if tt.ndim == 2 else tt)
    return DeviceData(b, x_dev, labels, t_hot, test, classes)


def device_data(
    x_train: Any,
    t_train: Any,
    x_test: Any = None,
    t_test: Any = None,
    *,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    output_size: int | None = None,
) -> DeviceData:
    """Move a data set to a backend's device once, for several :func:`run_group` calls."""
    b = backend if isinstance(backend, Backend) else get_backend(backend, None, dtype)
    if dtype is not None and isinstance(backend, Backend):
        b = b.with_dtype(dtype)
    return _to_device(b, x_train, t_train, x_test, t_test, _classes(t_train, output_size))


def _per_model(values: list[float], like: Any, b: Backend) -> Any:
    """One hyperparameter for K models: a number when they agree, else (K, 1, 1)."""
    if all(v == values[0] for v in values):
        return float(values[0])
    return b.asarray(np.asarray(values, dtype=np.float64).reshape(-1, 1, 1), dtype=like.dtype)


def check_rungs(halving: Sequence[int] | None, *, iters: int, interval: int) -> tuple[int, ...]:
    """Successive-halving rungs, checked: increasing evaluation steps before the last step.

    Parameters
    ----------
    halving : sequence of int or None
        The rung steps (0-based).
    iters, interval : int
        Steps of the run and steps between evaluations (evaluations run at every multiple
        of ``interval`` and at step ``iters - 1``).

    Returns
    -------
    tuple of int, empty for None

    Raises
    ------
    ValueError
        A rung that is not an integer, not a multiple of ``interval``, not before step
        ``iters - 1``, or out of order; the message names it and what to give instead.
    """
    if halving is None:
        return ()
    if isinstance(halving, str | bytes) or not isinstance(halving, Iterable):
        raise ValueError(f"halving must be a sequence of rung steps, got {halving!r}")
    rungs = tuple(halving)
    last = int(iters) - 1
    hint = f"give multiples of {interval} below {last}"
    for r in rungs:
        if isinstance(r, bool) or not isinstance(r, int | np.integer) or r < 0:
            raise ValueError(f"halving rung {r!r} is not a step (an integer >= 0); {hint}")
        if r >= last:
            raise ValueError(
                f"halving rung {r} is not before the last step ({last}): nothing would "
                f"train after it; {hint}"
            )
        if r % interval:
            raise ValueError(
                f"halving rung {r} is not an evaluation step (evaluations run every "
                f"{interval} steps); {hint}, or set eval_interval to divide it"
            )
    if any(a >= b for a, b in itertools.pairwise(rungs)):
        raise ValueError(f"halving rungs must be increasing, got {list(rungs)}")
    return tuple(int(r) for r in rungs)


def _survivors(
    histories: Sequence[TrainHistory], alive: np.ndarray, units: Sequence[str]
) -> list[int]:
    """The stack rows that go on at a rung, in stack order.

    A config trained with several seeds is one unit (``units[r]``: row r's config less its
    seed): its seeds go on or stop together, so a summary's mean over seeds never mixes
    steps. The better ``ceil(n / 2)`` of the n units with a live row go on, ranked by the
    train accuracy just evaluated (mean over the unit's live rows; the test set is never
    used to choose, so a survivor's test accuracy stays an honest estimate), then by the
    lower mean training loss since the evaluation before, then by stack order (config
    order). Diverged rows (``alive`` False) never go on. Host values only: they were read
    back for the evaluation.
    """
    rows: dict[str, list[int]] = {}
    for r, unit in enumerate(units):
        if alive[r]:
            rows.setdefault(unit, []).append(r)

    def rank(unit: str) -> tuple[float, float, int]:
        accs, losses = [], []
        for r in rows[unit]:
            h = histories[r]
            since = h.eval_steps[-2] + 1 if len(h.eval_steps) > 1 else 0
            accs.append(h.train_acc[-1])
            losses.append(float(np.mean(h.loss[since:])))
        return (-float(np.mean(accs)), float(np.mean(losses)), rows[unit][0])

    kept = sorted(rows, key=rank)[: math.ceil(len(rows) / 2)]
    return sorted(r for unit in kept for r in rows[unit])


def _unit(config: dict[str, Any]) -> str:
    """A normalized config less its seed: the unit successive halving keeps or stops."""
    return json.dumps(_jsonable({k: v for k, v in config.items() if k != "seed"}), sort_keys=True)


def _take_models(name: str, a: Any, index: Any, xp: Any) -> Any:
    """The models ``index`` of a stacked array: ``Wi`` (K, D, H) kept model axis second in
    memory, as :func:`stack_params` lays it out (the shared-batch matmul reads it without a
    copy); anything else (K, ...) along its first axis."""
    if name[0] == "W":
        return xp.permute_dims(xp.take(xp.permute_dims(a, (1, 0, 2)), index, axis=1), (1, 0, 2))
    return xp.take(a, index, axis=0)


def _per_model_take(v: Any, index: Any, xp: Any) -> Any:
    """A hyperparameter of the survivors: a number stays; a (K, 1, 1) array is cut."""
    return v if isinstance(v, int | float) else xp.take(v, index, axis=0)


def run_group(
    configs: list[dict[str, Any]],
    data: DeviceData,
    *,
    iters: int,
    batch_size: int,
    eval_interval: int | None = None,
    on_steps: Callable[[int], Any] | None = None,
    halving: Sequence[int] | None = None,
) -> list[SweepRecord]:
    """Train one stackable group of normalized configs as one model; a record each.

    ``halving`` rungs (see :func:`sweep`) cut the stack to its better half at each rung.
    """
    b, xp = data.backend, data.backend.xp
    configs = [normalize(c) for c in configs]
    first = configs[0]
    if any(_group_key(c) != _group_key(first) for c in configs):
        raise ValueError("run_group: configs differ in layer sizes, activation or optimizer")
    k = len(configs)
    n_train = int(data.x.shape[0])
    sizes = (int(data.x.shape[1]), *first["hidden_sizes"], data.classes)
    interval = eval_interval or max(n_train // batch_size, 1)
    rungs = set(check_rungs(halving, iters=iters, interval=interval))
    activation, dtype = first["activation"], b.float_dtype

    # Each member's initial weights, exactly as its own net would draw them.
    hosts = [init_params(sizes, c["weight_init_std"], c["seed"]) for c in configs]
    params = stack_params(hosts, b, dtype)
    like = params["W1"]
    weight_decay = _per_model([c["weight_decay"] for c in configs], like, b)
    opt_cls = OPTIMIZERS[first["optimizer"]]
    hyper = {h: _per_model([c[h] for c in configs], like, b) for h in opt_cls.HYPER}
    optimizer = opt_cls(**hyper)
    sgd_lr = hyper["lr"] if opt_cls is SGD else None
    in_place = is_writeable_array(like)
    active = xp.ones((k, 1, 1), dtype=dtype, device=b.device)

    seeds = sorted({c["seed"] for c in configs})
    # Every seed's stream keeps drawing after its configs stopped, as the draws of one
    # interval come from one host call; only the rows of running members are gathered.
    streams = [batch_chunks(s, n_train, batch_size, interval, iters) for s in seeds]
    scale = input_scale(data.x)

    records = [SweepRecord(dict(c)) for c in configs]
    # The stack's rows: ``members[r]`` is the config of row r (increasing: config order).
    members = list(range(k))
    seed_of = [seeds.index(c["seed"]) for c in configs]
    unit_of = [_unit(c) for c in configs]  # what halving keeps or stops together
    pending: list[Any] = []
    alive = np.ones(k, dtype=bool)
    saved = {n: xp.asarray(v, copy=True) for n, v in params.items()}

    def one_step(xb: Any, tb: Any) -> Any:
        step = sgd_lr if sgd_lr is not None else 1.0
        loss, grads = loss_and_grads(
            params, xb, tb, activation, scale=scale, step=step, weight_decay=weight_decay
        )
        if sgd_lr is None:
            optimizer.update(params, grads)
        elif in_place:
            for n, g in grads.items():
                params[n] -= g
        else:
            for n, g in grads.items():
                params[n] = params[n] - g
        if not bool(alive.all()):  # frozen members keep their parameters
            for n in params:
                params[n] = xp.where(active > 0, params[n], saved[n])
        return loss

    def rows_of(chunks: tuple, offset: int) -> np.ndarray:
        """(S, B) rows shared by the stack, or (S, K, B): each model its seed's rows."""
        streams_used = [seed_of[m] for m in members]
        if len(set(streams_used)) == 1:
            return chunks[streams_used[0]][1][offset:, ...]
        return np.stack([c[1][offset:, ...] for c in chunks], axis=1)[:, streams_used]

    def shrink(keep: list[int], step: int) -> bool:
        """Cut the stack to rows ``keep``; the others stop at this rung. True if it cut."""
        nonlocal active, alive, sgd_lr, weight_decay, members
        if len(keep) == len(members):  # a stack of one keeps it: ceil(1 / 2) = 1
            return False
        now = time.perf_counter() - start
        for r in sorted(set(range(len(members))) - set(keep)):
            records[members[r]].stopped_at = step
            records[members[r]].history.loop_seconds = now
        members = [members[r] for r in keep]
        if not keep:
            return True
        index = b.asarray(np.asarray(keep, dtype=np.int64))
        for n in params:
            params[n] = _take_models(n, params[n], index, xp)
            saved[n] = _take_models(n, saved[n], index, xp)
        for slot in optimizer.state.values():  # the step counter (Adam's t) is shared
            for n in slot:
                slot[n] = _take_models(n, slot[n], index, xp)
        for h in opt_cls.HYPER:  # through the optimizer's setter: it drops its device copy
            setattr(optimizer, h, _per_model_take(optimizer.hyper[h], index, xp))
        sgd_lr = optimizer.hyper["lr"] if opt_cls is SGD else None
        weight_decay = _per_model_take(weight_decay, index, xp)
        # survivors are all live: diverged members never survive a rung
        alive = np.ones(len(keep), dtype=bool)
        active = xp.ones((len(keep), 1, 1), dtype=dtype, device=b.device)
        return True

    flops = 2 * k * batch_size * sizes[0] * sizes[1]  # the stack's first matmul
    start = time.perf_counter()
    done = 0
    with (
        warnings.catch_warnings(),
        np.errstate(over="ignore", invalid="ignore"),
        blas_threads(flops),
    ):
        # a diverging member may overflow before it is frozen; the others are unaffected
        warnings.simplefilter("ignore", RuntimeWarning)
        for chunks in zip(*streams, strict=True):
            first_step = chunks[0][0]
            n_steps = chunks[0][1].shape[0]
            offset = 0
            while offset < n_steps and members:
                rows = b.asarray(rows_of(chunks, offset))
                offset_before = offset
                for i, (xb, tb) in enumerate(batch_blocks(data.x, data.t_hot, rows, dtype)):
                    step = first_step + offset_before + i
                    offset = offset_before + i + 1
                    pending.append(one_step(xb, tb))
                    if step % interval == 0 or step == iters - 1:
                        histories = [records[m].history for m in members]
                        if _evaluate_group(
                            params,
                            saved,
                            active,
                            alive,
                            histories,
                            [records[m] for m in members],
                            pending,
                            step,
                            data,
                            activation,
                            scale,
                        ):
                            active = b.asarray(
                                alive.astype(np.float64).reshape(-1, 1, 1), dtype=dtype
                            )
                        if step in rungs:
                            units = [unit_of[m] for m in members]
                            if shrink(_survivors(histories, alive, units), step):
                                break  # the rest of this block was gathered for the old stack
            done += n_steps
            if on_steps is not None:
                on_steps(n_steps)
            if not members:  # every member diverged and was dropped: nothing left to train
                break
        b.synchronize()
    if on_steps is not None and done < iters:
        on_steps(iters - done)
    seconds = time.perf_counter() - start
    for m in members:
        records[m].history.loop_seconds = seconds
    return records


def stack_params(hosts: list[dict[str, Any]], like: Any, dtype: Any) -> dict[str, Any]:
    """K nets' host parameters as one stacked set on ``like``'s backend (a Backend).

    ``Wi`` becomes (K, D_in, D_out) stored model axis second (a transposed view of a
    (D_in, K, D_out) array), so a batch shared by all K meets it in one matrix product;
    ``bi`` becomes (K, 1, D_out).
    """
    xp = like.xp
    out = {}
    for name in hosts[0]:
        if name[0] == "W":
            stack = np.stack([h[name] for h in hosts], axis=1)  # (D_in, K, D_out)
            out[name] = xp.permute_dims(like.asarray(stack, dtype=dtype), (1, 0, 2))
        else:
            out[name] = like.asarray(np.stack([h[name] for h in hosts])[:, None, :], dtype=dtype)
    return out


def _default_hyper(cls: type, name: str) -> float:
    import inspect

    return float(inspect.signature(cls.__init__).parameters[name].default)


def _evaluate_group(
    params, saved, active, alive, histories, records, pending, step, data, activation, scale
) -> bool:
    """Read the losses back, evaluate all K models, freeze new divergers; True if any."""
    xp = data.backend.xp
    losses = to_numpy(xp.stack(pending))  # (steps, K)
    pending.clear()
    newly = []
    for m in np.flatnonzero(alive):
        h = histories[m]
        col = losses[:, m]
        bad = np.flatnonzero(~np.isfinite(col))
        if bad.size:  # keep the losses up to the first bad one, as train() raises there
            h.loss.extend(float(v) for v in col[: bad[0] + 1])
            newly.append(m)
            continue
        since = len(h.loss)
        h.loss.extend(float(v) for v in col)
        if is_runaway(h.loss[0], float(np.mean(h.loss[since:]))) and since > 0:
            newly.append(m)
    counts = _counts(params, data.x, data.labels, activation, scale)
    test = None
    if data.test is not None:
        test = _counts(params, data.test[0], data.test[1], activation, scale)
    n_train = int(data.x.shape[0])
    for m in np.flatnonzero(alive):
        h = histories[m]
        if m in newly and not np.isfinite(h.loss[-1]):
            continue  # NaN: no evaluation of broken parameters
        h.eval_steps.append(step)
        h.train_acc.append(int(counts[m]) / n_train)
        if test is not None:
            h.test_acc.append(int(test[m]) / int(data.test[0].shape[0]))
    for m in newly:
        alive[m] = False
        records[m].diverged = histories[m].diverged = True
    if newly:  # restore the last evaluated parameters of the new divergers, then freeze
        keep = data.backend.asarray(
            alive.astype(np.float64).reshape(-1, 1, 1), dtype=params["W1"].dtype
        )
        for n in params:
            params[n] = xp.where(keep > 0, params[n], saved[n])
    for n in params:
        saved[n] = xp.asarray(params[n], copy=True)
    return bool(newly)


def _counts(params, x, labels, activation, scale) -> np.ndarray:
    """Correct rows per model over a whole set, in chunks; one read-back."""
    n = int(x.shape[0])
    total = None
    for s in range(0, n, EVAL_CHUNK):
        e = min(n, s + EVAL_CHUNK)
        xc = x[s:e, ...]
        if xc.dtype != params["W1"].dtype:
            xc = array_namespace(xc).astype(xc, params["W1"].dtype)  # once for all K
        c = correct_count(params, xc, labels[s:e, ...], activation, scale=scale)
        total = c if total is None else total + c
    return to_numpy(total)

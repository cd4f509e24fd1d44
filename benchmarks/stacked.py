"""Stacked sweeps: K learning rates of the chapter's recipe trained as one stacked model
(:func:`xpnet.sweeps.run_group`, :func:`xpnet.sweep`) against K sequential ``xpnet.train``
runs, on one backend.

Two kinds of rows, ids ``KIND-PART/backend:device/dtype/kK`` with KIND ``stacked`` or
``sequential``:

- PART ``steps``: training steps alone. Every run evaluates only after its first and its
  last step (``eval_interval=10**9``); each is timed with S and with S/2 steps, and the
  difference is the time of S/2 steps, the two evaluations (of the training set; no test
  set) and the set-up cancelling out. ``fixed_seconds`` is what they cost.
- PART ``sweep``: the whole thing as a user runs it, wall clock: ``xpnet.sweep`` on the full
  data with its evaluations every epoch against K sequential nets built and trained with
  ``xpnet.train``.

:func:`stacked_ratios` divides them; the ``steps`` rows also carry the FLOP floor of one
model's step at the GEMM rate measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

import xpnet
from xpnet.sweeps import device_data, run_group

from . import BATCH, HIDDEN, INPUT, OUTPUT, WARMUP_STEPS
from .timing import step_flops

#: Evaluations only after the first and the last step.
NO_EVAL = 10**9


def learning_rates(k: int) -> list[float]:
    """The sweep: ``k`` learning rates from 0.01 to 1, evenly spaced in log."""
    return [float(v) for v in np.geomspace(0.01, 1.0, k)]


def steps_difference(long_s: float, short_s: float, steps: int) -> dict[str, float]:
    """Seconds of ``steps // 2`` steps as ``T(steps) - T(steps // 2)``, and what that leaves
    for the fixed cost (evaluations, set-up) of one run: ``T(steps // 2) - half``."""
    half = long_s - short_s
    return {"steps_seconds": half, "fixed_seconds": short_s - half}


def _stacked_loop(lrs: list[float], data: Any, steps: int, interval: int | None) -> float:
    recs = run_group(xpnet.grid(lr=lrs), data, iters=steps, batch_size=BATCH,
                     eval_interval=interval)  # fmt: skip
    return recs[0].history.loop_seconds


def _sequential_loop(lrs: list[float], b: xpnet.Backend, data: tuple, steps: int) -> float:
    total = 0.0
    for lr in lrs:
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        h = xpnet.train(net, *data, iters=steps, batch_size=BATCH, lr=lr, seed=0,
                        eval_interval=NO_EVAL)  # fmt: skip
        total += h.loop_seconds
    return total


def _row(kind: str, part: str, b: xpnet.Backend, k: int, steps: int, runs: list[float],
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    seconds = statistics.median(runs)
    return {"id": f"{kind}-{part}/{b.name}:{b.device_name}/{b.dtype_name}/k{k}", "kind": kind,
            "part": part, "backend": b.name, "device": b.device_name, "dtype": b.dtype_name,
            "models": k, "steps": steps, "seconds": seconds, "runs": runs,
            "seconds_per_model_step": seconds / (k * steps), **extra}  # fmt: skip


def bench_stacked_steps(
    b: xpnet.Backend,
    data: tuple,
    steps: int,
    repeats: int,
    ks: tuple[int, ...],
    gemm_gflops: float | None,
    *,
    sequential_k: int | None = None,
) -> list[dict[str, Any]]:
    """Steps alone, stacked for every K in ``ks``, sequential for ``sequential_k`` models
    (default the first K; 1 times one run, the GPU's question: what do K configs cost
    against one?); runs interleaved, median of ``repeats`` differences (see the module
    docstring)."""
    seq_k = ks[0] if sequential_k is None else sequential_k
    x, t = data[0], data[1]
    dev = device_data(x, t, backend=b)
    half = steps // 2
    _stacked_loop(learning_rates(ks[0]), dev, WARMUP_STEPS, NO_EVAL)
    _sequential_loop(learning_rates(1), b, (x, t), WARMUP_STEPS)
    timers = {("stacked", k): lambda n, k=k: _stacked_loop(learning_rates(k), dev, n, NO_EVAL)
              for k in ks}  # fmt: skip
    timers["sequential", seq_k] = lambda n: _sequential_loop(learning_rates(seq_k), b, (x, t), n)
    diffs: dict[tuple, list[dict[str, float]]] = {key: [] for key in timers}
    for _ in range(repeats):
        for key, timer in timers.items():
            diffs[key].append(steps_difference(timer(steps), timer(half), steps))
    floor = None if not gemm_gflops else step_flops(BATCH, HIDDEN) / (gemm_gflops * 1e9)
    rows = []
    for (kind, k), d in diffs.items():
        runs = [v["steps_seconds"] for v in d]
        fixed = statistics.median(v["fixed_seconds"] for v in d)
        rows.append(_row(kind, "steps", b, k, steps - half, runs, fixed_seconds=fixed,
                         floor_seconds_per_model_step=floor))  # fmt: skip
    return rows


def bench_stacked_sweep(
    b: xpnet.Backend, data: tuple, steps: int, repeats: int, k: int
) -> list[dict[str, Any]]:
    """The whole sweep with its per-epoch evaluations, wall clock: ``xpnet.sweep`` against
    ``k`` sequential nets and ``xpnet.train`` runs, on the full data."""
    lrs = learning_rates(k)

    def stacked() -> float:
        t0 = time.perf_counter()
        xpnet.sweep(xpnet.grid(lr=lrs), *data, iters=steps, batch_size=BATCH, backend=b)
        return time.perf_counter() - t0

    def sequential() -> float:
        t0 = time.perf_counter()
        for lr in lrs:
            net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
            xpnet.train(net, *data, iters=steps, batch_size=BATCH, lr=lr, seed=0)
        return time.perf_counter() - t0

    runs: dict[str, list[float]] = {"stacked": [], "sequential": []}
    for _ in range(repeats):
        runs["stacked"].append(stacked())
        runs["sequential"].append(sequential())
    n_train = int(data[0].shape[0])
    return [_row(kind, "sweep", b, k, steps, r, train_rows=n_train,
                 eval_every=max(n_train // BATCH, 1)) for kind, r in runs.items()]  # fmt: skip


def stacked_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stacked over sequential (steps and whole sweep), a stack over one run (when a
    one-model sequential row was timed), a model's stacked step over its FLOP floor, and
    the time per model of larger stacks over the smallest one's."""
    by_id = {r["id"]: r for r in rows}
    out = []

    def add(name: str, num: dict, den_id: str, value: float) -> None:
        out.append({"name": name, "numerator": num["id"], "denominator": den_id,
                    "value": value})  # fmt: skip

    for r in rows:
        if r["kind"] != "stacked":
            continue
        seq = by_id.get(r["id"].replace("stacked-", "sequential-", 1))
        if seq is not None:
            add(f"stacked/sequential {r['part']}", r, seq["id"], r["seconds"] / seq["seconds"])
        one = by_id.get(r["id"].rsplit("/", 1)[0].replace("stacked-", "sequential-", 1) + "/k1")
        if one is not None and r["models"] > 1:  # K configs in one stack against one run
            add(f"stacked/one run {r['part']}", r, one["id"], r["seconds"] / one["seconds"])
        if r["part"] != "steps":
            continue
        if r.get("floor_seconds_per_model_step"):
            value = r["seconds_per_model_step"] / r["floor_seconds_per_model_step"]
            add("stacked step/floor", r, "gemm floor of one model's step", value)
        smallest = min((s for s in rows if s["kind"] == "stacked" and s["part"] == "steps"
                        and s["backend"] == r["backend"] and s["device"] == r["device"]),
                       key=lambda s: s["models"])  # fmt: skip
        if smallest["models"] < r["models"]:
            value = r["seconds_per_model_step"] / smallest["seconds_per_model_step"]
            add(f"k{r['models']}/k{smallest['models']} per model", r, smallest["id"], value)
    return out

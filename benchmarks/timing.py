"""Timing windows, the recipe's FLOP model, and the matmul floor it is measured against.

The floor is the time the recipe's matmuls take when each shape is timed alone; a training
row divided by it says how much of the loop is not matmul. The evaluation matmuls are
modelled in the chunks xpnet runs (:data:`xpnet.evaluation.EVAL_CHUNK` rows), so the floor is
built from shapes the library really multiplies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import xpnet
from xpnet.evaluation import EVAL_CHUNK

from . import BATCH, HIDDEN, INPUT, OUTPUT


def windows(fn: Callable[[], Any], sync: Callable[[], None], target_s: float) -> list[float]:
    """Seconds per call of ``fn`` in three timed windows of about ``target_s / 3`` each.

    One untimed call first (warm-up: kernel compilation, allocator, BLAS threads), then
    the calls per window are doubled until a window lasts long enough to time.
    """
    fn()
    sync()
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        sync()
        dt = time.perf_counter() - t0
        if dt >= target_s / 3 or k >= 1 << 16:
            break
        k *= 2
    out = [dt / k]
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        sync()
        out.append((time.perf_counter() - t0) / k)
    return out


def step_flops(batch: int, hidden: int, d: int = INPUT, c: int = OUTPUT) -> int:
    """Matmul FLOPs of one training step (2 per multiply-add).

    Forward ``x@W1`` and ``z1@W2``; backward ``z1.T@dy``, ``dy@W2.T`` and ``x.T@da1``.
    """
    return 2 * batch * (2 * d * hidden + 3 * hidden * c)


def eval_steps(iters: int, n_train: int, batch: int = BATCH) -> list[int]:
    """Steps after which the chapter (and ``xpnet.train``) evaluate: every epoch from 0."""
    return list(range(0, iters, max(n_train // batch, 1)))


Shape = tuple[int, int, int, int]  # (m, k, n, left transposed): an (m, k) @ (k, n) matmul


def matmul_plan(
    iters: int,
    n_train: int,
    n_test: int,
    *,
    d: int = INPUT,
    hidden: int = HIDDEN,
    c: int = OUTPUT,
    batch: int = BATCH,
    chunk: int = EVAL_CHUNK,
) -> list[tuple[Shape, int]]:
    """Every matmul of the recipe as ((m, k, n, transposed-left), count), sorted.

    ``iters`` training steps of ``batch`` rows, then an evaluation of the ``n_train`` and
    ``n_test`` rows at every :func:`eval_steps` step, in chunks of ``chunk`` rows (the
    library's :data:`~xpnet.evaluation.EVAL_CHUNK` by default).
    """
    plan: dict[Shape, int] = {}

    def add(shape: Shape, count: int) -> None:
        plan[shape] = plan.get(shape, 0) + count

    h, b = hidden, batch
    # forward x@W1, z1@W2; backward z1.T@dy, dy@W2.T, x.T@da1 (last flag: left is a .T view)
    for shape in ((b, d, h, 0), (b, h, c, 0), (h, b, c, 1), (b, c, h, 0), (d, b, h, 1)):
        add(shape, iters)
    n_evals = len(eval_steps(iters, n_train, batch))
    for n in (n_train, n_test):
        for s in range(0, n, chunk):
            rows = min(chunk, n - s)
            add((rows, d, h, 0), n_evals)
            add((rows, h, c, 0), n_evals)
    return sorted(plan.items())


def recipe_flops(iters: int, n_train: int, n_test: int, **shape: int) -> int:
    """Matmul FLOPs of the whole recipe: every training step and every evaluation.

    ``shape`` takes :func:`matmul_plan`'s keywords (``d``, ``hidden``, ``c``, ``batch``,
    ``chunk``).
    """
    plan = matmul_plan(iters, n_train, n_test, **shape)
    return sum(2 * m * k * n * count for (m, k, n, _), count in plan)


def measure_matmul(
    b: xpnet.Backend,
    plan: list[tuple[Shape, int]],
    gemm_n: int,
    target_s: float,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Best time of each recipe matmul shape, and of one square GEMM, on backend ``b``.

    With ``previous`` (an earlier measurement of the same plan), each time is the better
    of the two: a floor is the best the machine did, and on a shared machine another
    process may have held a core during one of them.
    """
    rng = np.random.default_rng(0)
    before = [s["seconds_per_call"] for s in previous["shapes"]] if previous else None
    shapes, floor_s, flops = [], 0.0, 0
    for i, ((m, k, n, transposed), count) in enumerate(plan):
        left = b.asarray(rng.standard_normal((k, m) if transposed else (m, k)))
        left = left.T if transposed else left
        right = b.asarray(rng.standard_normal((k, n)))
        per_call = min(windows(lambda a=left, r=right: b.xp.matmul(a, r), b.synchronize, target_s))
        per_call = min(per_call, before[i]) if before else per_call
        floor_s += count * per_call
        flops += 2 * m * k * n * count
        shapes.append({"m": m, "k": k, "n": n, "left_transposed": bool(transposed),
                       "count": count, "seconds_per_call": per_call,
                       "gflops": 2 * m * k * n / per_call / 1e9})  # fmt: skip
    a = b.asarray(rng.standard_normal((gemm_n, gemm_n)))
    gemm_s = min(windows(lambda: b.xp.matmul(a, a), b.synchronize, target_s))
    gemm_s = min(gemm_s, previous["gemm_seconds"]) if previous else gemm_s
    return {
        "recipe_gflop": flops / 1e9,
        "floor_seconds": floor_s,
        "recipe_shapes_gflops": flops / floor_s / 1e9,
        "gemm_n": gemm_n,
        "gemm_seconds": gemm_s,
        "gemm_gflops": 2 * gemm_n**3 / gemm_s / 1e9,
        "shapes": shapes,
    }


def other_cpu_seconds() -> float | None:
    """CPU seconds used so far by every other process on this machine (Linux), else None.

    Busy time from /proc/stat (steal included: the hypervisor gave our CPUs away) minus
    this process's and its waited-for children's CPU time. A difference between two calls
    says how much another process competed with a measurement.
    """
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy / hz - sum(os.times()[:4])


def others_since(start: float | None) -> float | None:
    """Other processes' CPU seconds since ``start`` (an :func:`other_cpu_seconds` value)."""
    now = other_cpu_seconds()
    return None if start is None or now is None else round(max(now - start, 0.0), 2)

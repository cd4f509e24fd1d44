"""The chapter run timed on an idle machine and beside one competing CPU-bound process.

A training loop whose BLAS threads outnumber the free cores can slow down many times over
when another process takes one core (threads spin at barriers waiting for the one that was
descheduled). This section measures that: the same ``xpnet.train`` run, idle and with a
second Python process doing float64 2000x2000 matmuls on one BLAS thread, started and
stopped here. It measures whatever thread count the library chooses.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import xpnet

from . import BATCH, HIDDEN, INPUT, LR, OUTPUT, WARMUP_STEPS
from .timing import other_cpu_seconds, others_since

# Steps of the timed run (fewer when the whole benchmark runs fewer).
LOAD_STEPS = 2000
COMPETITOR_N = 2000
COMPETITOR_THREADS = 1

_COMPETITOR = f"""
import numpy as np
a = np.random.default_rng(0).standard_normal(({COMPETITOR_N}, {COMPETITOR_N}))
a @ a
print("ready", flush=True)
while True:
    a @ a
"""


@contextmanager
def competitor() -> Iterator[subprocess.Popen]:
    """A second Python process doing float64 matmuls on one BLAS thread until the block ends.

    Returns once its first matmul is done (so it is busy while the caller measures) and
    kills it on the way out, also when the block raises.
    """
    threads = str(COMPETITOR_THREADS)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", _COMPETITOR], stdout=subprocess.PIPE,
                            env=env, text=True)  # fmt: skip
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the competing process exited early (code {proc.poll()})")
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def bench_under_load(
    b: xpnet.Backend, data: tuple[np.ndarray, ...], steps: int, repeats: int
) -> list[dict[str, Any]]:
    """``xpnet.train`` with the chapter's recipe, idle and under load, runs interleaved.

    Returns two rows, ``load-idle/...`` and ``load-busy/...``, each with the median loop
    seconds of ``repeats`` runs; :func:`benchmarks.report.ratios` divides them.
    """

    def run(iters: int) -> tuple[float, float | None]:
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        others = other_cpu_seconds()
        h = xpnet.train(net, *data, iters=iters, batch_size=BATCH, lr=LR, seed=0)
        return h.loop_seconds, others_since(others)

    run(WARMUP_STEPS)
    runs: dict[str, list[tuple[float, float | None]]] = {"idle": [], "busy": []}
    for _ in range(repeats):
        runs["idle"].append(run(steps))
        with competitor():
            runs["busy"].append(run(steps))
    where = f"{b.name}:{b.device_name}"
    rows = []
    for kind, r in runs.items():
        times = [t for t, _ in r]
        rows.append({"id": f"load-{kind}/{where}/{b.dtype_name}", "impl": "xpnet",
                     "load": kind, "backend": b.name, "device": b.device_name,
                     "dtype": b.dtype_name, "steps": steps,
                     "seconds": statistics.median(times), "runs": times,
                     "other_cpu_seconds": [o for _, o in r],
                     "competitor": None if kind == "idle" else
                     f"python, float64 {COMPETITOR_N}x{COMPETITOR_N} matmuls, "
                     f"{COMPETITOR_THREADS} BLAS thread"})  # fmt: skip
    return rows

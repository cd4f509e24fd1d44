"""A sweep on Dask worker processes against the same sweep in-process.

Usage::

    python benchmarks/dask_bench.py [--configs 32] [--iters 600] [--max-models 4]
                                    [--workers 2] [--dtype float32]

Trains ``--configs`` learning rates of the chapter's net (784-50-10, sigmoid, batch 100,
train and test accuracy once per epoch) on the bundled MNIST sample (4,000 train / 1,000
test digits), split into stacks of ``--max-models`` (32 / 4 = 8 tasks), three ways:

* in-process (:func:`xpnet.sweeps.sweep`), NumPy limited to the BLAS threads one Dask
  worker gets (``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` when set, else 1);
* ``connect("local:1")``: one single-threaded worker process;
* ``connect(f"local:{--workers}")``.

Each time is the sweep call alone (data sent to the workers, every task, results back),
with the cluster already started; its start-up is printed apart. Beside each time, the
CPUs it kept busy (CPU seconds of the process, or of all workers, per second): on a
machine other programs share, N workers getting fewer than N CPUs explains a low ratio.
Prints the three times and two ratios: throughput of N workers over one (ideally N), and
one worker's time over in-process (the cost of the scheduler and of moving data and
results).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import numpy as np

import xpnet
from xpnet.distributed import connect
from xpnet.sweeps import grid, sweep


def blas_threads() -> int:
    """The BLAS threads a local Dask worker gets: the user's setting, else 1."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var])
    return 1


def dask_rows(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    n_configs: int = 32,
    iters: int = 600,
    max_models: int = 4,
    workers: int = 2,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Time one sweep in-process, on ``local:1`` and on ``local:{workers}``.

    Returns
    -------
    dict
        ``in_process_s``, ``local1_s``, ``localN_s`` (seconds of the sweep call),
        ``start_local1_s``, ``start_localN_s`` (cluster start-up), ``speedup_N_over_1``
        (local:1 time / local:N time), ``overhead_1_over_in_process`` (local:1 time /
        in-process time), ``in_process_cpus``, ``local1_cpus``, ``localN_cpus`` (CPU
        seconds per second of the sweep: what the process or the workers got), the sweep's
        shape, and whether all three gave equal histories.
    """
    from threadpoolctl import threadpool_limits

    configs = grid(lr=[float(v) for v in np.geomspace(0.01, 1.0, n_configs)])
    kw = {"iters": iters, "batch_size": 100, "backend": "numpy", "dtype": dtype,
          "max_models": max_models}  # fmt: skip
    with threadpool_limits(blas_threads()):
        start, cpu = time.perf_counter(), time.process_time()
        ref = sweep(configs, *data, **kw)
        in_process = time.perf_counter() - start
        in_process_cpu = time.process_time() - cpu
    out: dict[str, Any] = {"configs": n_configs, "iters": iters, "max_models": max_models,
                           "tasks": -(-n_configs // max_models), "workers": workers,
                           "blas_threads": blas_threads(), "dtype": dtype,
                           "in_process_s": in_process,
                           "in_process_cpus": in_process_cpu / in_process}  # fmt: skip
    same = True
    for n, name in ((1, "local1"), (workers, "localN")):
        start = time.perf_counter()
        with connect(f"local:{n}") as client:
            client.wait_for_workers(n)
            out[f"start_{name}_s"] = time.perf_counter() - start
            cpu = sum(client.run(time.process_time).values())
            start = time.perf_counter()
            got = sweep(configs, *data, client=client, **kw)
            out[f"{name}_s"] = time.perf_counter() - start
            # CPUs the workers got: on a shared machine, fewer than the workers
            cpu = sum(client.run(time.process_time).values()) - cpu
            out[f"{name}_cpus"] = cpu / out[f"{name}_s"]
        same = same and all(
            g.history.loss == r.history.loss and g.history.test_acc == r.history.test_acc
            for g, r in zip(got, ref, strict=True)
        )
    out["speedup_N_over_1"] = out["local1_s"] / out["localN_s"]
    out["overhead_1_over_in_process"] = out["local1_s"] / out["in_process_s"]
    out["equal_histories"] = same
    return out


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import distributed

    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"NumPy {np.__version__}, dask.distributed {distributed.__version__}, "
            f"xpnet {xpnet.__version__}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", type=int, default=32)
    p.add_argument("--iters", type=int, default=600)
    p.add_argument("--max-models", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a = p.parse_args(argv)
    (x, t), (xt, tt) = xpnet.load_mnist(normalize=False, dataset="mnist-sample")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    r = dask_rows((x, t, xt, tt), n_configs=a.configs, iters=a.iters,
                  max_models=a.max_models, workers=a.workers, dtype=a.dtype)  # fmt: skip
    n = a.workers
    print(f"machine: {_machine()}; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")  # fmt: skip
    print(f"sweep: {r['configs']} configs x {r['iters']} steps, numpy {r['dtype']}, "
          f"{r['tasks']} stacks of <= {r['max_models']}, {r['blas_threads']} BLAS thread(s) "
          "per process")  # fmt: skip
    print(f"in-process      {r['in_process_s']:7.2f} s   {r['in_process_cpus']:.2f} CPUs busy")
    for label, key in (("1", "local1"), (str(n), "localN")):
        start, cpus = r[f"start_{key}_s"], r[f"{key}_cpus"]
        print(f"--dask local:{label}  {r[f'{key}_s']:7.2f} s   {cpus:.2f} CPUs busy in workers "
              f"(cluster start {start:.1f} s)")  # fmt: skip
    print(f"throughput local:{n} / local:1      {r['speedup_N_over_1']:.2f}x")
    print(f"time local:1 / in-process         {r['overhead_1_over_in_process']:.2f}x")
    print(f"histories equal in all three runs: {r['equal_histories']}")
    return r


if __name__ == "__main__":
    main()

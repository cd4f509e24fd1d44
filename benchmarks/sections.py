"""The sections of a benchmark run; each returns a list of JSON-ready rows with an ``id``.

Row ids read ``impl/backend:device/dtype`` (training), ``numgrad-*/backend:device/bBATCH``
(numerical gradient), ``numtrain/backend:device``, ``scaling/.../hH/bB``,
``closure-*/numpy:cpu/nN`` and ``load-idle``/``load-busy`` ``/backend:device/dtype``;
:func:`benchmarks.report.ratios` divides rows by id.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import xpnet

from . import BATCH, HIDDEN, INPUT, LR, OUTPUT, WARMUP_STEPS, chapter, torch_eager
from .timing import other_cpu_seconds, others_since, step_flops, windows

REPO = Path(__file__).resolve().parent.parent

# (backend, device) pairs tried for xpnet rows; array_api_strict only with --include-strict.
CANDIDATES = (("numpy", "cpu"), ("torch", "cpu"), ("torch", "cuda"), ("cupy", "cuda"))
STRICT = ("array_api_strict", "cpu")


def load_data(synthetic: bool) -> tuple[tuple[np.ndarray, ...], str]:
    """Fashion-MNIST as uint8 (N, 784) and labels, else random data of the same shape."""
    if not synthetic:
        try:
            (x_train, t_train), (x_test, t_test) = xpnet.load_mnist(
                normalize=False, flatten=True, dataset="fashion-mnist", download=False
            )
            return (x_train, t_train, x_test, t_test), "fashion-mnist"
        except xpnet.DataError as exc:
            print(f"bench: fashion-mnist not available ({exc}); using synthetic data")
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(60_000, INPUT), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(10_000, INPUT), dtype=np.uint8)
    t_train = rng.integers(0, OUTPUT, size=60_000).astype(np.uint8)
    t_test = rng.integers(0, OUTPUT, size=10_000).astype(np.uint8)
    return (x_train, t_train, x_test, t_test), "synthetic"


def backends(
    dtypes: tuple[str, ...], include_strict: bool, skipped: list[dict], *, gpu_only: bool = False
) -> list[xpnet.Backend]:
    """Every usable (backend, device, dtype) of :data:`CANDIDATES`; the rest go to ``skipped``.

    ``gpu_only``: only the CUDA devices, so a borrowed GPU machine times no CPU row.
    """
    out = []
    for name, device in (*CANDIDATES, *((STRICT,) if include_strict else ())):
        if gpu_only and device != "cuda":
            continue
        for dtype in dtypes:
            try:
                out.append(xpnet.get_backend(name, device, dtype, tf32=False))
            except xpnet.BackendError as exc:
                skipped.append({"id": f"{name}:{device}/{dtype}", "reason": str(exc)})
    return out


def label(b: xpnet.Backend) -> str:
    """``backend:device``, the middle part of every row id."""
    return f"{b.name}:{b.device_name}"


def xpnet_runs(b: xpnet.Backend, data: tuple, iters: int) -> Iterator[tuple[float, dict]]:
    """Warm up once, then yield (loop seconds, row details) of one timed run per ``next``."""
    x_train, t_train, x_test, t_test = data
    warm = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
    xpnet.train(warm, x_train[:2000], t_train[:2000], x_test[:500], t_test[:500],
                iters=WARMUP_STEPS, seed=0)  # fmt: skip
    while True:
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        h = xpnet.train(net, *data, iters=iters, batch_size=BATCH, lr=LR, seed=0)
        final = net.accuracy(x_test, t_test, scale=1 / 255)  # as train() scales uint8
        yield h.loop_seconds, {"final_test_acc": final, "eval_train_acc": h.train_acc,
                               "eval_test_acc": h.test_acc, "final_loss": h.loss[-1]}  # fmt: skip


def chapter_runs(data: tuple, iters: int) -> Iterator[tuple[float, dict]]:
    """The baseline: :func:`benchmarks.chapter.train` on data as the chapter's loader gives it."""
    x_train, t_train, x_test, t_test = data
    # As the book's load_mnist(normalize=True, one_hot_label=True) gives them: float32
    # images (which np.dot casts to the float64 weights' dtype on every call) and float64
    # one-hot labels.
    xf, xs = x_train.astype(np.float32) / 255.0, x_test.astype(np.float32) / 255.0
    tf, ts = np.eye(OUTPUT)[t_train], np.eye(OUTPUT)[t_test]
    chapter.train(xf[:2000], tf[:2000], xs[:500], ts[:500], WARMUP_STEPS)
    while True:
        net, seconds, train_acc, test_acc = chapter.train(xf, tf, xs, ts, iters)
        yield seconds, {"final_test_acc": float(net.accuracy(xs, ts)),
                        "eval_train_acc": [float(a) for a in train_acc],
                        "eval_test_acc": [float(a) for a in test_acc]}  # fmt: skip


def torch_runs(device: str, data: tuple, iters: int) -> Iterator[tuple[float, dict]]:
    """Plain PyTorch: :func:`benchmarks.torch_eager.train` after a warm-up."""
    torch_eager.train(device, *(d[:2000] for d in data), WARMUP_STEPS)
    while True:
        seconds, train_acc, test_acc, final = torch_eager.train(device, *data, iters)
        yield seconds, {"final_test_acc": final, "eval_train_acc": train_acc,
                        "eval_test_acc": test_acc}  # fmt: skip


def bench_training(runners: list[tuple], iters: int, repeats: int) -> list[dict[str, Any]]:
    """Round-robin: every runner's first run, then every second run, and so on.

    Interleaving spreads slow phases of a shared machine over all rows instead of one.
    ``runners`` holds (impl, "backend:device", dtype, generator) tuples.
    """
    runs: list[list[tuple[float, float | None]]] = [[] for _ in runners]
    details: list[dict] = [{} for _ in runners]
    for _ in range(repeats):
        for i, (*_, gen) in enumerate(runners):
            others = other_cpu_seconds()
            seconds, details[i] = next(gen)
            runs[i].append((seconds, others_since(others)))
    rows = []
    for (impl, where, dtype, _), r, extra in zip(runners, runs, details, strict=True):
        backend, device = where.split(":", 1)
        times = [t for t, _ in r]
        seconds = statistics.median(times)
        rows.append({"id": f"{impl}/{where}/{dtype}", "impl": impl, "backend": backend,
                     "device": device, "dtype": dtype, "seconds": seconds, "runs": times,
                     "other_cpu_seconds": [o for _, o in r],
                     "samples_per_second": iters * BATCH / seconds, **extra})  # fmt: skip
    return rows


def bench_numerical(
    bs: list[xpnet.Backend],
    data: tuple[np.ndarray, ...],
    batches: tuple[int, ...],
    repeats: int,
    *,
    chapter_loop: bool = True,
) -> list[dict[str, Any]]:
    """Full numerical gradient, float64: xpnet vectorized per backend, the chapter's loop.

    ``max_abs_diff`` compares each result with the first backend's (NumPy's).
    """
    x_train, t_train = data[0], data[1]
    rows = []
    for batch in batches:
        x = x_train[:batch].astype(np.float64) / 255.0
        t = t_train[:batch]
        reference = None
        for b in bs:
            net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
            xd, td = b.asarray(x), b.asarray(t)
            net.numerical_gradient(xd[:3, ...], td[:3])  # warm-up
            b.synchronize()
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                g = net.numerical_gradient(xd, td)
                b.synchronize()
                runs.append(time.perf_counter() - t0)
            g = {k: b.to_numpy(v) for k, v in g.items()}
            if reference is None:
                reference = (g, {k: b.to_numpy(v) for k, v in net.params.items()})
            rows.append({"id": f"numgrad-xpnet/{label(b)}/b{batch}", "impl": "xpnet vectorized",
                         "backend": b.name, "device": b.device_name, "batch": batch,
                         "seconds": statistics.median(runs), "runs": runs,
                         "max_abs_diff": max_diff(g, reference[0])})  # fmt: skip
        if reference is None or not chapter_loop:
            continue
        net = chapter.TwoLayerNet(INPUT, HIDDEN, OUTPUT)
        net.params = {k: v.copy() for k, v in reference[1].items()}
        t0 = time.perf_counter()
        g = net.numerical_gradient(x, np.eye(OUTPUT)[t])
        seconds = time.perf_counter() - t0
        rows.append({"id": f"numgrad-chapter/numpy:cpu/b{batch}", "impl": "chapter loop",
                     "backend": "numpy", "device": "cpu", "batch": batch, "seconds": seconds,
                     "runs": [seconds], "max_abs_diff": max_diff(g, reference[0])})  # fmt: skip
    return rows


def bench_numerical_training(bs, data, steps: int) -> list[dict[str, Any]]:
    """``xpnet.train(..., gradient="numerical")``, the chapter's commented-out line: steps/s.

    float64, batch 100, on a 1,000-row slice so the evaluation after step 0 stays small;
    the first step is an untimed warm-up run.
    """
    x, t = data[0][:1000], data[1][:1000]
    rows = []
    for b in bs:
        xpnet.train(xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0), x, t,
                    iters=1, batch_size=BATCH, gradient="numerical")  # fmt: skip
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        h = xpnet.train(net, x, t, iters=steps, batch_size=BATCH, lr=LR, gradient="numerical",
                        eval_interval=steps)  # fmt: skip
        rows.append({"id": f"numtrain/{label(b)}", "backend": b.name, "device": b.device_name,
                     "steps": steps, "seconds": h.loop_seconds,
                     "steps_per_second": steps / h.loop_seconds})  # fmt: skip
    return rows


def max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in b)


def bench_scaling(bs, hiddens, batches, target_s, matmul) -> list[dict[str, Any]]:
    """Seconds per training step (loss_and_gradient + SGD update) for larger shapes."""
    rows = []
    rng = np.random.default_rng(0)
    for b in bs:
        gemm = matmul[f"{label(b)}/{b.dtype_name}"]["gemm_gflops"]
        for hidden in hiddens:
            for batch in batches:
                net = xpnet.TwoLayerNet(INPUT, hidden, OUTPUT, backend=b, seed=0)
                x = b.asarray(rng.random((batch, INPUT)))
                t = b.asarray(rng.integers(0, OUTPUT, size=batch))

                def step(net=net, x=x, t=t):
                    _, grads = net.loss_and_gradient(x, t)
                    for k, g in grads.items():
                        net.params[k] -= LR * g

                seconds = statistics.median(windows(step, b.synchronize, target_s))
                gflops = step_flops(batch, hidden) / seconds / 1e9
                rows.append({"id": f"scaling/{label(b)}/{b.dtype_name}/h{hidden}/b{batch}",
                             "backend": b.name, "device": b.device_name, "dtype": b.dtype_name,
                             "hidden": hidden, "batch": batch, "seconds": seconds,
                             "gflops": gflops,
                             "percent_of_gemm": 100 * gflops / gemm})  # fmt: skip
    return rows


def bench_closure_gradient(n: int, repeats: int) -> list[dict[str, Any]]:
    """The chapter-style closure ``xpnet.numerical_gradient(f, x)`` against the chapter's loop.

    ``n`` float64 elements, NumPy, one element perturbed at a time (``batched=False``) in
    both; two ``f``: ``sum(x**2)`` (the chapter's ``function_2``, whose two calls per
    element are most of the time) and ``x[0]`` (almost free, so the loop's own cost shows).
    Runs interleaved, median of ``repeats``; ``max_abs_diff`` compares the two gradients.
    """
    x = np.random.default_rng(0).standard_normal(n)
    functions: dict[str, Callable[[np.ndarray], Any]] = {
        "sum-squares": lambda v: np.sum(v**2),
        "first-element": lambda v: v[0],
    }
    impls = {"xpnet": xpnet.numerical_gradient, "chapter": chapter.numerical_gradient}
    rows = []
    for f_name, f in functions.items():
        for fn in impls.values():
            fn(f, x[:100].copy())  # warm-up
        runs: dict[str, list[float]] = {k: [] for k in impls}
        grads: dict[str, np.ndarray] = {}
        for _ in range(repeats):
            for k, fn in impls.items():
                t0 = time.perf_counter()
                grads[k] = fn(f, x)
                runs[k].append(time.perf_counter() - t0)
        diff = float(np.max(np.abs(grads["xpnet"] - grads["chapter"])))
        rows += [{"id": f"closure-{k}/numpy:cpu/n{n}/{f_name}", "impl": k, "f": f_name,
                  "backend": "numpy", "device": "cpu", "dtype": "float64", "n": n,
                  "seconds": statistics.median(r), "runs": r, "max_abs_diff": diff}
                 for k, r in runs.items()]  # fmt: skip
    return rows


# Runs the command and prints its peak RSS last. A child's ru_maxrss starts at its parent's
# RSS when it is forked, so measuring from this (large) process would report our own size.
_RSS_WRAPPER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
sys.stdout.flush()
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def peak_rss(
    dataset: str, iters: int, script: str = "train", args: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Peak RSS of ``scripts/SCRIPT.py --quiet`` (``train`` or ``sweep``, with ``args``),
    from getrusage(RUSAGE_CHILDREN).ru_maxrss."""
    path = str(REPO / "scripts" / f"{script}.py")
    cmd = [sys.executable, path, "--quiet", "--dataset", dataset, "--iters", str(iters),
           "--backend", "numpy", "--device", "cpu", *args]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *cmd], capture_output=True,
                          text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    *lines, last = proc.stdout.strip().splitlines() or [""]
    rss = int(last) if last.isdigit() else 0
    return {
        "command": " ".join(["python", f"scripts/{script}.py", *cmd[2:]]),
        "returncode": proc.returncode,
        "seconds": seconds,
        "peak_rss_mib": rss / 1024 / (1024 if sys.platform == "darwin" else 1),  # macOS: bytes
        "stdout": "\n".join(lines),
        "stderr": proc.stderr.strip()[-2000:],
    }

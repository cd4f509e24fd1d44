"""Benchmark xpnet against the chapter's NumPy code, plain PyTorch and the matmul FLOP floor.

Usage::

    python scripts/bench.py [--iters 10000] [--repeats 3] [--out bench.json]
                            [--quick] [--synthetic] [--include-strict] [--peak-rss]

One run measures, side by side, on every backend this machine can use:

(a) ``xpnet.train`` with the chapter's recipe (784-50-10, sigmoid, batch 100, lr 0.1,
    train and test accuracy every 600 steps) in float32 and float64;
(b) the chapter's own ``TwoLayerNet`` and training loop (copied below), the baseline;
(c) the same recipe in plain PyTorch eager float32 with hand-written backprop;
(d) the FLOP floor: the recipe's matmuls timed one shape at a time on each backend;
(e) the full numerical gradient: xpnet's vectorized one against the chapter's loop;
(f) time per training step for larger hidden layers and batches, in GFLOP/s;
(g) training with ``gradient="numerical"``: steps per second.

Loop times are the median of ``--repeats`` runs (taken round-robin over the rows), each
row after an untimed warm-up of a few steps, with the device synchronized before the clock
stops. The CPU time other processes took meanwhile is recorded too: on a shared machine
it explains outliers. Data: Fashion-MNIST when installed, else random bytes of the same
shape (said in the output). ``--out`` writes every number and the machine description as
JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# Run from a checkout without installing: the package sits next to this folder.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import xpnet  # noqa: E402

# The chapter's recipe.
INPUT, HIDDEN, OUTPUT = 784, 50, 10
BATCH, LR = 100, 0.1
EVAL_CHUNK = 10_000  # rows per forward when xpnet and the PyTorch loop evaluate a set
WARMUP_STEPS = 20

# (backend, device) pairs tried for xpnet rows; array_api_strict only with --include-strict.
CANDIDATES = (("numpy", "cpu"), ("torch", "cpu"), ("torch", "cuda"), ("cupy", "cuda"))
STRICT = ("array_api_strict", "cpu")


# --- the chapter's code (common/functions.py, gradient_2d.py, two_layer_net.py) --------
# Copied as written, so the baseline is what a reader of the chapter would run. The
# chapter's text shows cross_entropy_error for one sample, -sum(t * log(y + 1e-7));
# two_layer_net.py imports the book's batch version (mean over rows), used here.


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:  # one-hot targets: the index of the correct label
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def _numerical_gradient_no_batch(f, x):
    h = 1e-4  # 0.0001
    grad = np.zeros_like(x)

    for idx in range(x.size):
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)  # f(x+h)

        x[idx] = tmp_val - h
        fxh2 = f(x)  # f(x-h)
        grad[idx] = (fxh1 - fxh2) / (2 * h)

        x[idx] = tmp_val

    return grad


def numerical_gradient(f, X):
    if X.ndim == 1:
        return _numerical_gradient_no_batch(f, X)
    else:
        grad = np.zeros_like(X)

        for idx, x in enumerate(X):
            grad[idx] = _numerical_gradient_no_batch(f, x)

        return grad


class ChapterTwoLayerNet:
    """The chapter's ``TwoLayerNet``; ``rng`` replaces the global ``np.random`` state."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, rng=None):
        rng = np.random if rng is None else rng
        self.params = {}
        self.params["W1"] = weight_init_std * rng.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = weight_init_std * rng.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]

        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)

        return y

    def loss(self, x, t):
        y = self.predict(x)

        return cross_entropy_error(y, t)

    def accuracy(self, x, t):
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        t = np.argmax(t, axis=1)

        accuracy = np.sum(y == t) / float(x.shape[0])
        return accuracy

    def numerical_gradient(self, x, t):
        loss_W = lambda W: self.loss(x, t)  # noqa: E731, N803

        grads = {}
        grads["W1"] = numerical_gradient(loss_W, self.params["W1"])
        grads["b1"] = numerical_gradient(loss_W, self.params["b1"])
        grads["W2"] = numerical_gradient(loss_W, self.params["W2"])
        grads["b2"] = numerical_gradient(loss_W, self.params["b2"])

        return grads

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        grads = {}

        batch_num = x.shape[0]

        # forward
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)

        # backward
        dy = (y - t) / batch_num
        grads["W2"] = np.dot(z1.T, dy)
        grads["b2"] = np.sum(dy, axis=0)

        dz1 = np.dot(dy, W2.T)
        da1 = sigmoid_grad(a1) * dz1
        grads["W1"] = np.dot(x.T, da1)
        grads["b1"] = np.sum(da1, axis=0)

        return grads


def chapter_train(x_train, t_train, x_test, t_test, iters_num, seed=0):
    """train_neuralnet.py without the plot; returns (network, loop seconds, accuracies)."""
    rng = np.random.RandomState(seed)  # the legacy generator behind np.random.*
    network = ChapterTwoLayerNet(input_size=INPUT, hidden_size=HIDDEN, output_size=OUTPUT, rng=rng)
    train_size = x_train.shape[0]
    batch_size = BATCH
    learning_rate = LR
    train_loss_list, train_acc_list, test_acc_list = [], [], []
    iter_per_epoch = max(train_size / batch_size, 1)

    start = time.perf_counter()
    for i in range(iters_num):
        batch_mask = rng.choice(train_size, batch_size)
        x_batch = x_train[batch_mask]
        t_batch = t_train[batch_mask]

        grad = network.gradient(x_batch, t_batch)

        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= learning_rate * grad[key]

        loss = network.loss(x_batch, t_batch)
        train_loss_list.append(loss)

        if i % iter_per_epoch == 0:
            train_acc = network.accuracy(x_train, t_train)
            test_acc = network.accuracy(x_test, t_test)
            train_acc_list.append(train_acc)
            test_acc_list.append(test_acc)
    seconds = time.perf_counter() - start
    return network, seconds, train_acc_list, test_acc_list


# --- plain PyTorch eager, float32, hand-written backprop -------------------------------


def torch_train(device, x_train, t_train, x_test, t_test, iters, seed=0):
    """The recipe in PyTorch eager: xpnet's initial weights, batches and evaluations.

    Images stay uint8 on the device and are scaled per batch; losses stay on the device
    until each evaluation, as in ``xpnet.train``. Returns (loop seconds, train and test
    accuracies at each evaluation, final test accuracy).
    """
    import torch

    init = xpnet.TwoLayerNet(
        INPUT, HIDDEN, OUTPUT, backend=xpnet.get_backend("numpy", "cpu"), seed=seed
    )
    dev = torch.device(device)
    p = {k: torch.as_tensor(np.asarray(v, np.float32), device=dev) for k, v in init.params.items()}
    x_dev = torch.as_tensor(x_train, device=dev)
    t_dev = torch.as_tensor(t_train, device=dev).long()
    test = (torch.as_tensor(x_test, device=dev), torch.as_tensor(t_test, device=dev).long())
    n = x_train.shape[0]
    interval = max(n // BATCH, 1)
    rng = np.random.default_rng(seed)
    losses, pending, train_acc, test_acc = [], [], [], []
    arange = torch.arange(BATCH, device=dev)

    def accuracy(x, t):
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        for s in range(0, x.shape[0], EVAL_CHUNK):
            xc = x[s : s + EVAL_CHUNK].float().mul_(1.0 / 255.0)
            a2 = torch.addmm(p["b2"], torch.sigmoid(torch.addmm(p["b1"], xc, p["W1"])), p["W2"])
            correct += (a2.argmax(dim=1) == t[s : s + EVAL_CHUNK]).sum()
        return correct.item() / x.shape[0]

    _sync_torch(dev)
    start = time.perf_counter()
    with torch.no_grad():
        step = 0
        while step < iters:
            chunk = min(interval - step % interval, iters - step)
            idx = torch.as_tensor(rng.integers(0, n, size=(chunk, BATCH)), device=dev)
            for i in range(chunk):
                rows = idx[i]
                x = x_dev.index_select(0, rows).float().mul_(1.0 / 255.0)
                t = t_dev.index_select(0, rows)
                a1 = torch.addmm(p["b1"], x, p["W1"])
                z1 = torch.sigmoid(a1)
                a2 = torch.addmm(p["b2"], z1, p["W2"])
                logp = torch.log_softmax(a2, dim=1)
                pending.append(-logp.gather(1, t[:, None]).mean())
                dy = logp.exp_()
                dy[arange, t] -= 1.0
                dy /= BATCH
                gw2, gb2 = torch.mm(z1.T, dy), dy.sum(0)
                da1 = torch.mm(dy, p["W2"].T).mul_(z1 * (1.0 - z1))
                gw1, gb1 = torch.mm(x.T, da1), da1.sum(0)
                for k, g in (("W1", gw1), ("b1", gb1), ("W2", gw2), ("b2", gb2)):
                    p[k].sub_(g, alpha=LR)
                if (step + i) % interval == 0:
                    losses.extend(torch.stack(pending).cpu().tolist())
                    pending.clear()
                    train_acc.append(accuracy(x_dev, t_dev))
                    test_acc.append(accuracy(*test))
            step += chunk
        if pending:
            losses.extend(torch.stack(pending).cpu().tolist())
    _sync_torch(dev)
    seconds = time.perf_counter() - start
    return seconds, train_acc, test_acc, accuracy(*test)


def _sync_torch(dev) -> None:
    if dev.type == "cuda":
        import torch

        torch.cuda.synchronize(dev)


# --- timing helpers --------------------------------------------------------------------


def _windows(fn: Callable[[], Any], sync: Callable[[], None], target_s: float) -> list[float]:
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


def eval_steps(iters: int, n_train: int) -> list[int]:
    """Steps after which the chapter (and ``xpnet.train``) evaluate: every epoch from 0."""
    return list(range(0, iters, max(n_train // BATCH, 1)))


def matmul_plan(iters: int, n_train: int, n_test: int) -> list[tuple[tuple[int, ...], int]]:
    """Every matmul of the recipe as ((m, k, n, transposed-left), count)."""
    plan: dict[tuple[int, ...], int] = {}

    def add(shape: tuple[int, ...], count: int) -> None:
        plan[shape] = plan.get(shape, 0) + count

    d, h, c, b = INPUT, HIDDEN, OUTPUT, BATCH
    # forward x@W1, z1@W2; backward z1.T@dy, dy@W2.T, x.T@da1 (last flag: left is a .T view)
    for shape in ((b, d, h, 0), (b, h, c, 0), (h, b, c, 1), (b, c, h, 0), (d, b, h, 1)):
        add(shape, iters)
    n_evals = len(eval_steps(iters, n_train))
    for n in (n_train, n_test):
        for s in range(0, n, EVAL_CHUNK):
            rows = min(EVAL_CHUNK, n - s)
            add((rows, d, h, 0), n_evals)
            add((rows, h, c, 0), n_evals)
    return sorted(plan.items())


def recipe_flops(iters: int, n_train: int, n_test: int) -> int:
    return sum(
        2 * m * k * n * count for (m, k, n, _), count in matmul_plan(iters, n_train, n_test)
    )


def measure_matmul(
    b: xpnet.Backend,
    plan: list[tuple[tuple[int, ...], int]],
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
        per_call = min(
            _windows(lambda a=left, r=right: b.xp.matmul(a, r), b.synchronize, target_s)
        )
        per_call = min(per_call, before[i]) if before else per_call
        floor_s += count * per_call
        flops += 2 * m * k * n * count
        shapes.append({"m": m, "k": k, "n": n, "left_transposed": bool(transposed),
                       "count": count, "seconds_per_call": per_call,
                       "gflops": 2 * m * k * n / per_call / 1e9})  # fmt: skip
    a = b.asarray(rng.standard_normal((gemm_n, gemm_n)))
    gemm_s = min(_windows(lambda: b.xp.matmul(a, a), b.synchronize, target_s))
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


def _others_since(start: float | None) -> float | None:
    now = other_cpu_seconds()
    return None if start is None or now is None else round(max(now - start, 0.0), 2)


# --- data and machine ------------------------------------------------------------------


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


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "torch": None,
        "torch_threads": None,
        "cupy": None,
        "gpu": None,
        "xpnet": xpnet.__version__,
        # Other processes share these CPUs; a high load makes every time here longer.
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import cupy

        info["cupy"] = cupy.__version__
        if info["gpu"] is None:
            info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except (ImportError, RuntimeError, OSError, AttributeError):
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas() -> str | None:
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name')} {cfg.get('version')}"
    except (TypeError, KeyError):  # NumPy < 2 prints instead of returning
        return None


# --- the sections ----------------------------------------------------------------------


def _backends(dtypes: tuple[str, ...], include_strict: bool, skipped: list[dict]) -> list:
    out = []
    for name, device in (*CANDIDATES, *((STRICT,) if include_strict else ())):
        for dtype in dtypes:
            try:
                out.append(xpnet.get_backend(name, device, dtype, tf32=False))
            except xpnet.BackendError as exc:
                skipped.append({"id": f"{name}:{device}/{dtype}", "reason": str(exc)})
    return out


def _label(b: xpnet.Backend) -> str:
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
        final = net.accuracy(x_test.astype(np.float32) / 255.0, t_test)  # after the last step
        yield h.loop_seconds, {"final_test_acc": final, "eval_train_acc": h.train_acc,
                               "eval_test_acc": h.test_acc, "final_loss": h.loss[-1]}  # fmt: skip


def chapter_runs(data: tuple, iters: int) -> Iterator[tuple[float, dict]]:
    """The baseline: :func:`chapter_train` on the data as the chapter's loader gives it."""
    x_train, t_train, x_test, t_test = data
    # As the book's load_mnist(normalize=True, one_hot_label=True) gives them: float32
    # images (which np.dot casts to the float64 weights' dtype on every call) and float64
    # one-hot labels.
    xf, xs = x_train.astype(np.float32) / 255.0, x_test.astype(np.float32) / 255.0
    tf, ts = np.eye(OUTPUT)[t_train], np.eye(OUTPUT)[t_test]
    chapter_train(xf[:2000], tf[:2000], xs[:500], ts[:500], WARMUP_STEPS)
    while True:
        net, seconds, train_acc, test_acc = chapter_train(xf, tf, xs, ts, iters)
        yield seconds, {"final_test_acc": float(net.accuracy(xs, ts)),
                        "eval_train_acc": [float(a) for a in train_acc],
                        "eval_test_acc": [float(a) for a in test_acc]}  # fmt: skip


def torch_runs(device: str, data: tuple, iters: int) -> Iterator[tuple[float, dict]]:
    """Plain PyTorch: :func:`torch_train` after a warm-up."""
    torch_train(device, *(d[:2000] for d in data), WARMUP_STEPS)
    while True:
        seconds, train_acc, test_acc, final = torch_train(device, *data, iters)
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
            runs[i].append((seconds, _others_since(others)))
    rows = []
    for (impl, label, dtype, _), r, extra in zip(runners, runs, details, strict=True):
        backend, device = label.split(":", 1)
        times = [t for t, _ in r]
        seconds = statistics.median(times)
        rows.append({"id": f"{impl}/{label}/{dtype}", "impl": impl, "backend": backend,
                     "device": device, "dtype": dtype, "seconds": seconds, "runs": times,
                     "other_cpu_seconds": [o for _, o in r],
                     "samples_per_second": iters * BATCH / seconds, **extra})  # fmt: skip
    return rows


def bench_numerical(backends, data, batches, repeats) -> list[dict[str, Any]]:
    """Full numerical gradient, float64: xpnet vectorized per backend, the chapter's loop.

    ``max_abs_diff`` compares each result with the first backend's (NumPy's).
    """
    x_train, t_train = data[0], data[1]
    rows = []
    for batch in batches:
        x = x_train[:batch].astype(np.float64) / 255.0
        t = t_train[:batch]
        reference = None
        for b in backends:
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
            rows.append({"id": f"numgrad-xpnet/{_label(b)}/b{batch}", "impl": "xpnet vectorized",
                         "backend": b.name, "device": b.device_name, "batch": batch,
                         "seconds": statistics.median(runs), "runs": runs,
                         "max_abs_diff": _max_diff(g, reference[0])})  # fmt: skip
        if reference is None:
            continue
        net = ChapterTwoLayerNet(INPUT, HIDDEN, OUTPUT)
        net.params = {k: v.copy() for k, v in reference[1].items()}
        t0 = time.perf_counter()
        g = net.numerical_gradient(x, np.eye(OUTPUT)[t])
        seconds = time.perf_counter() - t0
        rows.append({"id": f"numgrad-chapter/numpy:cpu/b{batch}", "impl": "chapter loop",
                     "backend": "numpy", "device": "cpu", "batch": batch, "seconds": seconds,
                     "runs": [seconds], "max_abs_diff": _max_diff(g, reference[0])})  # fmt: skip
    return rows


def bench_numerical_training(backends, data, steps: int) -> list[dict[str, Any]]:
    """``xpnet.train(..., gradient="numerical")``, the chapter's commented-out line: steps/s.

    float64, batch 100, on a 1,000-row slice so the evaluation after step 0 stays small;
    the first step is an untimed warm-up run.
    """
    x, t = data[0][:1000], data[1][:1000]
    rows = []
    for b in backends:
        xpnet.train(xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0), x, t,
                    iters=1, batch_size=BATCH, gradient="numerical")  # fmt: skip
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        h = xpnet.train(net, x, t, iters=steps, batch_size=BATCH, lr=LR, gradient="numerical",
                        eval_interval=steps)  # fmt: skip
        rows.append({"id": f"numtrain/{_label(b)}", "backend": b.name, "device": b.device_name,
                     "steps": steps, "seconds": h.loop_seconds,
                     "steps_per_second": steps / h.loop_seconds})  # fmt: skip
    return rows


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in b)


def bench_scaling(backends, hiddens, batches, target_s, matmul) -> list[dict[str, Any]]:
    """Seconds per training step (loss_and_gradient + SGD update) for larger shapes."""
    rows = []
    rng = np.random.default_rng(0)
    for b in backends:
        gemm = matmul[f"{_label(b)}/{b.dtype_name}"]["gemm_gflops"]
        for hidden in hiddens:
            for batch in batches:
                net = xpnet.TwoLayerNet(INPUT, hidden, OUTPUT, backend=b, seed=0)
                x = b.asarray(rng.random((batch, INPUT)))
                t = b.asarray(rng.integers(0, OUTPUT, size=batch))

                def step(net=net, x=x, t=t):
                    _, grads = net.loss_and_gradient(x, t)
                    for k, g in grads.items():
                        net.params[k] -= LR * g

                seconds = statistics.median(_windows(step, b.synchronize, target_s))
                gflops = step_flops(batch, hidden) / seconds / 1e9
                rows.append({"id": f"scaling/{_label(b)}/{b.dtype_name}/h{hidden}/b{batch}",
                             "backend": b.name, "device": b.device_name, "dtype": b.dtype_name,
                             "hidden": hidden, "batch": batch, "seconds": seconds,
                             "gflops": gflops,
                             "percent_of_gemm": 100 * gflops / gemm})  # fmt: skip
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


def peak_rss(dataset: str, iters: int) -> dict[str, Any]:
    """Peak RSS of ``scripts/train.py --quiet``, from getrusage(RUSAGE_CHILDREN).ru_maxrss."""
    script = str(REPO / "scripts" / "train.py")
    cmd = [sys.executable, script, "--quiet", "--dataset", dataset, "--iters", str(iters),
           "--backend", "numpy", "--device", "cpu"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *cmd], capture_output=True,
                          text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    *lines, last = proc.stdout.strip().splitlines() or [""]
    rss = int(last) if last.isdigit() else 0
    return {
        "command": " ".join(["python", "scripts/train.py", *cmd[2:]]),
        "returncode": proc.returncode,
        "seconds": seconds,
        "peak_rss_mib": rss / 1024 / (1024 if sys.platform == "darwin" else 1),  # macOS: bytes
        "stdout": "\n".join(lines),
        "stderr": proc.stderr.strip()[-2000:],
    }


# --- ratios, table, main ---------------------------------------------------------------


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Time quotients within this run; each names the two row ids it divides."""
    by_id = _seconds_by_id(result)
    out = []

    def add(name: str, num: str, den: str) -> None:
        if num in by_id and den in by_id:
            value = by_id[num] / by_id[den]
            out.append({"name": name, "numerator": num, "denominator": den, "value": value})

    for row in result["training"]:
        if row["impl"] == "chapter":
            add("chapter/floor", row["id"], f"floor/numpy:cpu/{row['dtype']}")
            continue
        kind = row["impl"]
        label = f"{row['backend']}:{row['device']}/{row['dtype']}"
        add(f"{kind}/floor", row["id"], f"floor/{label}")
        if kind == "xpnet":
            add("xpnet/baseline", row["id"], "chapter/numpy:cpu/float64")
            add("xpnet/pytorch", row["id"], f"pytorch/torch:{row['device']}/{row['dtype']}")
    for row in result["numerical_gradient"]:
        if row["impl"] == "xpnet vectorized":
            add("vectorized/loop", row["id"], f"numgrad-chapter/numpy:cpu/b{row['batch']}")
    return out


def _seconds_by_id(result: dict[str, Any]) -> dict[str, float]:
    rows = [*result["training"], *result["numerical_gradient"], *result["scaling"]]
    by_id = {r["id"]: r["seconds"] for r in rows}
    by_id.update({f"floor/{k}": v["floor_seconds"] for k, v in result["matmul"].items()})
    return by_id


def _finite(obj: Any) -> Any:
    """The result with NaN and infinities as null, so the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        for i in range(len(headers))
    ]

    def line(vals: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.4g}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def report(result: dict[str, Any]) -> str:
    m, cfg = result["machine"], result["config"]
    ratio = {(r["name"], r["numerator"]): r["value"] for r in result["ratios"]}
    out = [
        f"xpnet bench: {result['data']['name']} ({result['data']['n_train']} train / "
        f"{result['data']['n_test']} test), {cfg['iters']} iters x batch {BATCH}, lr {LR}, "
        f"784-{HIDDEN}-10 sigmoid, median of {cfg['repeats']} run(s)",
        f"machine: {m['cpu_model']}, {m['cpu_count']} CPUs, python {m['python']}, numpy "
        f"{m['numpy']} ({m['blas']}), torch {m['torch']} ({m['torch_threads']} threads), "
        f"GPU: {m['gpu'] or 'none'}",
    ]
    if m.get("loadavg_end") is not None:
        out.append(
            f"load average (1 min) at start / end: {m['loadavg_start'][0]:.2f} / "
            f"{m['loadavg_end'][0]:.2f}"
        )
    shares = {k: v["other_share"] for k, v in result.get("interference", {}).items()}
    if shares and None not in shares.values():
        out.append("other processes' share of the CPUs while measuring: "
                   + ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items()))  # fmt: skip
        if max(shares.values()) > 0.05:
            out.append("WARNING: other processes competed for the CPUs; rerun on an idle "
                       "machine before trusting these times")  # fmt: skip
    if result["data"]["name"] == "synthetic":
        out.append("NOTE: synthetic data (random uint8 images and labels): accuracies are chance")
    out += ["", "(a-c) training loop, evaluations included (ratios: time / time; <1 is faster)"]
    rows = [[r["impl"], r["backend"], r["device"], r["dtype"], r["seconds"],
             round(r["samples_per_second"]), r["final_test_acc"],
             ratio.get(("xpnet/baseline", r["id"])), ratio.get(("xpnet/pytorch", r["id"])),
             ratio.get((f"{r['impl']}/floor", r["id"]))] for r in result["training"]]  # fmt: skip
    out.append(_table(["impl", "backend", "device", "dtype", "loop s", "samples/s", "test acc",
                       "/chapter", "/pytorch", "/floor"], rows))  # fmt: skip
    out += [
        "",
        "(d) FLOP floor: each recipe matmul shape timed alone (best of 3 windows, in a pass "
        "before and one after sections a-c and e), times summed over the recipe; GEMM: "
        "n x n @ n x n",
    ]
    rows = [[*k.split("/"), v["recipe_gflop"], v["recipe_shapes_gflops"], v["floor_seconds"],
             v["gemm_n"], v["gemm_gflops"]] for k, v in result["matmul"].items()]  # fmt: skip
    out.append(_table(["backend", "dtype", "recipe GFLOP", "shapes GFLOP/s", "floor s",
                       "GEMM n", "GEMM GFLOP/s"], rows))  # fmt: skip
    out += ["", "(e) numerical gradient of all 39,760 parameters, float64"]
    rows = [[r["impl"], f"{r['backend']}:{r['device']}", r["batch"], r["seconds"],
             ratio.get(("vectorized/loop", r["id"])), r["max_abs_diff"]]
            for r in result["numerical_gradient"]]  # fmt: skip
    out.append(_table(["impl", "backend", "batch", "seconds", "/loop", "max|diff|"], rows))
    if result.get("numerical_training"):
        out += ["", "(g) training with gradient='numerical' (the chapter's commented-out line), "
                "float64, batch 100"]  # fmt: skip
        rows = [[f"{r['backend']}:{r['device']}", r["steps"], r["seconds"],
                 r["steps_per_second"]] for r in result["numerical_training"]]  # fmt: skip
        out.append(_table(["backend", "steps", "seconds", "steps/s"], rows))
    out += ["", "(f) one training step (loss_and_gradient + SGD update), float32"]
    rows = [[f"{r['backend']}:{r['device']}", r["hidden"], r["batch"], 1e3 * r["seconds"],
             r["gflops"], r["percent_of_gemm"]] for r in result["scaling"]]  # fmt: skip
    out.append(_table(["backend", "hidden", "batch", "ms/step", "GFLOP/s", "% GEMM"], rows))
    if result.get("peak_rss"):
        p = result["peak_rss"]
        out += [
            "",
            f"peak RSS of `{p['command']}`: {p['peak_rss_mib']:.0f} MiB "
            f"(exit {p['returncode']}, {p['seconds']:.1f} s)",
        ]
    for s in result["skipped"]:
        out.append(f"skipped {s['id']}: {s['reason']}")
    return "\n".join(out)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = p.add_argument
    add("--iters", type=_positive_int, help="training steps (default 10000; 600 with --quick)")
    add(
        "--repeats",
        type=_positive_int,
        help="timed runs per row, median reported (default 3; 1 with --quick)",
    )
    add(
        "--quick",
        action="store_true",
        help="smoke run (<1 min on 2 cores): 600 steps, one "
        "repeat, numerical gradient on batch 3 only, smaller sweep",
    )
    add("--synthetic", action="store_true", help="random data even when Fashion-MNIST is found")
    add("--include-strict", action="store_true", help="also array_api_strict (slow)")
    add(
        "--peak-rss",
        action="store_true",
        help="also run scripts/train.py --quiet and report its peak RSS",
    )
    add("--out", type=Path, metavar="PATH", help="write every number as JSON")
    args = p.parse_args(argv)
    if args.iters is None:
        args.iters = 600 if args.quick else 10_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    skipped: list[dict[str, Any]] = []
    data, name = load_data(args.synthetic)
    n_train, n_test = data[0].shape[0], data[2].shape[0]
    result: dict[str, Any] = {
        "machine": machine(),
        "config": {"iters": args.iters, "repeats": args.repeats, "quick": quick,
                   "batch_size": BATCH, "lr": LR, "hidden_size": HIDDEN,
                   "eval_steps": eval_steps(args.iters, n_train), "tf32": False,
                   "include_strict": args.include_strict},
        "data": {"name": name, "synthetic": name == "synthetic", "n_train": n_train,
                 "n_test": n_test},
        "skipped": skipped,
    }  # fmt: skip
    backends = _backends(("float32", "float64"), args.include_strict, skipped)
    target = 0.03 if quick else 0.3
    interference = result["interference"] = {}

    def section(name: str, fn: Callable[[], Any]) -> Any:
        """Run one section; note how much CPU other processes took meanwhile."""
        others, t0 = other_cpu_seconds(), time.perf_counter()
        out = fn()
        wall, other = time.perf_counter() - t0, _others_since(others)
        share = None if other is None else other / (wall * (os.cpu_count() or 1))
        interference[name] = {"wall_seconds": wall, "other_cpu_seconds": other,
                              "other_share": share}  # fmt: skip
        return out

    # (d) the floor each training row is divided by, measured before and after the rest.
    plan = matmul_plan(args.iters, n_train, n_test)

    def floors(previous: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for b in backends:
            on_gpu = b.name == "cupy" or "cuda" in b.device_name
            gemm_n = 8192 if on_gpu else (1024 if quick else 2048)
            key = f"{_label(b)}/{b.dtype_name}"
            out[key] = measure_matmul(b, plan, gemm_n, target, previous.get(key))
        return out

    first_floor = section("floor", lambda: floors({}))

    # (a) xpnet, (b) the chapter, (c) plain PyTorch, their repeats interleaved.
    def training() -> list[dict[str, Any]]:
        it = args.iters
        runners = [("xpnet", _label(b), b.dtype_name, xpnet_runs(b, data, it)) for b in backends]
        runners.append(("chapter", "numpy:cpu", "float64", chapter_runs(data, it)))
        for b in backends:
            if b.name == "torch" and b.dtype_name == "float32":
                label = f"torch:{b.device_name}"
                runners.append(("pytorch", label, "float32", torch_runs(b.device_name, data, it)))
        return bench_training(runners, it, args.repeats)

    result["training"] = section("training", training)

    # (e) numerical gradient, float64; --quick: batch 3 only (the loop takes ~10 s on 100).
    batches = (3,) if quick else (3, 100)
    b64 = [b for b in backends if b.dtype_name == "float64"]
    result["numerical_gradient"] = section(
        "numerical_gradient", lambda: bench_numerical(b64, data, batches, args.repeats)
    )
    result["numerical_training"] = section(
        "numerical_training",
        lambda: bench_numerical_training(b64, data, 2 if quick else 10),
    )
    result["matmul"] = section("floor_again", lambda: floors(first_floor))

    # (f) scaling, float32.
    b32 = [b for b in backends if b.dtype_name == "float32"]
    hiddens = (50, 800) if quick else (50, 200, 800, 3200)
    sweep_batches = (100,) if quick else (100, 1000)
    result["scaling"] = section(
        "scaling",
        lambda: bench_scaling(b32, hiddens, sweep_batches, target, result["matmul"]),
    )

    if args.peak_rss:
        dataset = "fashion-mnist" if name == "fashion-mnist" else "mnist-sample"
        result["peak_rss"] = peak_rss(dataset, args.iters)
    result["ratios"] = ratios(result)
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_end"] = list(os.getloadavg())

    print(report(result))
    if args.out is not None:
        args.out.write_text(json.dumps(_finite(result), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

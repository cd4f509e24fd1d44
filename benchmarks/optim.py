"""Optimizer rows: their cost on the chapter's recipe, and the book's optimizer comparison.

Row ids: ``optim-NAME/numpy:cpu/float32`` (the chapter's recipe with each optimizer) and
``compare-IMPL-NAME/numpy:cpu/DTYPE`` (ch06/optimizer_compare_mnist.py's setting, IMPL
``xpnet`` or ``book``); :func:`benchmarks.report.ratios` divides them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import xpnet

from . import BATCH, HIDDEN, INPUT, LR, OUTPUT, WARMUP_STEPS, chapter
from .sections import bench_training

#: The optimizers whose cost is compared with plain SGD, and the learning rates they train
#: the recipe with (``sgd`` is ``train``'s default path, ``optimizer=None``).
COST_LRS = {"sgd": LR, "momentum": 0.01, "adam": 0.001}

#: The book's comparison: its class names, xpnet's names, the book's default rates.
COMPARE = {"SGD": ("sgd", 0.01), "Momentum": ("momentum", 0.01),
           "AdaGrad": ("adagrad", 0.01), "Adam": ("adam", 0.001)}  # fmt: skip


def cost_runs(
    b: xpnet.Backend, data: tuple, iters: int, name: str
) -> Iterator[tuple[float, dict]]:
    """The chapter's recipe (784-50-10 sigmoid, batch 100, evaluations every epoch) trained
    with optimizer ``name``; yields (loop seconds, details) per run after a warm-up."""

    def run(steps: int, d: tuple) -> xpnet.TrainHistory:
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        opt = None if name == "sgd" else xpnet.get_optimizer(name, lr=COST_LRS[name])
        return xpnet.train(net, *d, iters=steps, batch_size=BATCH, lr=LR, seed=0,
                           optimizer=opt)  # fmt: skip

    run(WARMUP_STEPS, (data[0][:2000], data[1][:2000], data[2][:500], data[3][:500]))
    while True:
        h = run(iters, data)
        yield h.loop_seconds, {"optimizer": name, "lr": COST_LRS[name], "final_loss": h.loss[-1],
                               "final_test_acc": h.test_acc[-1]}  # fmt: skip


def bench_optimizer_cost(b: xpnet.Backend, data: tuple, iters: int, repeats: int) -> list[dict]:
    """Loop seconds of the recipe with SGD, Momentum and Adam, runs interleaved."""
    where = f"{b.name}:{b.device_name}"
    runners = [(f"optim-{n}", where, b.dtype_name, cost_runs(b, data, iters, n))
               for n in COST_LRS]  # fmt: skip
    return bench_training(runners, iters, repeats)


def compare_data(data: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Training images as the book's ``load_mnist(normalize=True)`` gives them (float32 in
    [0, 1]) and integer labels."""
    return data[0].astype(np.float32) / 255.0, data[1].astype(np.int64)


def xpnet_compare_runs(
    b: xpnet.Backend, x: np.ndarray, t: np.ndarray, iters: int, name: str
) -> Iterator[tuple[float, dict]]:
    """The book's loop written with xpnet: its MultiLayerNet 784-[100]*4-10 (relu, He init)
    and optimizer ``name``, batch 128, batches drawn on the host as the book does, the
    loss of every step kept (on the device). No evaluations, as in the book's loop."""
    key, lr = COMPARE[name]

    def run(steps: int, xs: Any, ts: Any) -> tuple[float, Any]:
        rng = np.random.default_rng(0)
        net = xpnet.MultiLayerNet(INPUT, chapter.COMPARE_HIDDEN, OUTPUT, "relu", "relu",
                                  backend=b, seed=0)  # fmt: skip
        opt = xpnet.get_optimizer(key, lr=lr)
        losses = []
        start = time.perf_counter()
        for _ in range(steps):
            rows = b.asarray(rng.integers(0, xs.shape[0], size=chapter.COMPARE_BATCH))
            loss, grads = net.loss_and_gradient(b.xp.take(xs, rows, axis=0),
                                                b.xp.take(ts, rows, axis=0))  # fmt: skip
            opt.update(net.params, grads)
            losses.append(loss)
        b.synchronize()
        return time.perf_counter() - start, losses[-1]

    xd, td = b.asarray(x, dtype=b.float_dtype), b.asarray(t)
    run(WARMUP_STEPS, xd, td)
    while True:
        seconds, loss = run(iters, xd, td)
        yield seconds, {"optimizer": name, "lr": lr, "final_loss": float(b.to_numpy(loss))}


def book_compare_runs(
    x: np.ndarray, t: np.ndarray, iters: int, name: str
) -> Iterator[tuple[float, dict]]:
    """The book's own code, :func:`benchmarks.chapter.compare_run`, after a warm-up."""
    chapter.compare_run(name, x[:2000], t[:2000], WARMUP_STEPS)
    while True:
        seconds, losses = chapter.compare_run(name, x, t, iters)
        yield seconds, {"optimizer": name, "lr": COMPARE[name][1], "final_loss": float(losses[-1])}


def bench_optimizer_compare(
    b: xpnet.Backend, data: tuple, iters: int, repeats: int
) -> list[dict[str, Any]]:
    """The book's comparison, per optimizer: xpnet (``b``) and the book's code (float64)."""
    x, t = compare_data(data)
    runners = []
    for name in COMPARE:
        runners.append((f"compare-xpnet-{name}", f"{b.name}:{b.device_name}", b.dtype_name,
                        xpnet_compare_runs(b, x, t, iters, name)))  # fmt: skip
        runners.append((f"compare-book-{name}", "numpy:cpu", "float64",
                        book_compare_runs(x, t, iters, name)))  # fmt: skip
    rows = bench_training(runners, iters, repeats)
    for r in rows:  # bench_training counts batches of the chapter's 100 rows
        r["samples_per_second"] = iters * chapter.COMPARE_BATCH / r["seconds"]
        r["steps"] = iters
    return rows

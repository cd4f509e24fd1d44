"""Conv nets: a training step of xpnet's SimpleConvNet and DeepConvNet against the book's
NumPy code structure, and the peak memory of a SimpleConvNet epoch.

The reference is the book's chapter 7 structure (im2col rows ``(N*out_h*out_w,
C*FH*FW)``, one matmul, a transpose back to NCHW; col2im adding strided slices into a
zero image; pooling by argmax over im2col rows), written out here, with the book's
``Relu``, ``Affine`` and ``SoftmaxWithLoss`` from :mod:`benchmarks.chapter`. One
departure: its im2col/col2im buffers take the input's dtype (the book's ``np.zeros`` are
float64, which would make the float32 reference compute in float64 and run slower).

Both sides start from the same weights and train on the same batches; a step is the
gradient plus the SGD update. Run ``python -m benchmarks.convnet`` (``--help``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import xpnet
from xpnet._threads import limit_blas_threads

from . import chapter

LR = 0.01


# --- the reference: the book's conv layers ---------------------------------------------


def ref_im2col(img, fh, fw, stride=1, pad=0):
    """Patches as rows, the book's way: one strided copy per filter offset."""
    n, c, h, w = img.shape
    oh = (h + 2 * pad - fh) // stride + 1
    ow = (w + 2 * pad - fw) // stride + 1
    padded = np.pad(img, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((n, c, fh, fw, oh, ow), dtype=img.dtype)
    for dy in range(fh):
        for dx in range(fw):
            col[:, :, dy, dx, :, :] = padded[
                :, :, dy : dy + stride * oh : stride, dx : dx + stride * ow : stride
            ]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def ref_col2im(col, shape, fh, fw, stride=1, pad=0):
    """Rows added back into a zero image, one strided slice per filter offset."""
    n, c, h, w = shape
    oh = (h + 2 * pad - fh) // stride + 1
    ow = (w + 2 * pad - fw) // stride + 1
    col = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
    for dy in range(fh):
        for dx in range(fw):
            img[:, :, dy : dy + stride * oh : stride, dx : dx + stride * ow : stride] += col[
                :, :, dy, dx, :, :
            ]
    return img[:, :, pad : h + pad, pad : w + pad]


class RefConvolution:
    def __init__(self, W, b, stride=1, pad=0):  # noqa: N803
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        fn, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        oh = (h + 2 * self.pad - fh) // self.stride + 1
        ow = (w + 2 * self.pad - fw) // self.stride + 1
        self.x = x
        self.col = ref_im2col(x, fh, fw, self.stride, self.pad)
        self.col_W = self.W.reshape(fn, -1).T
        out = self.col @ self.col_W + self.b
        return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        fn, c, fh, fw = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).transpose(1, 0).reshape(fn, c, fh, fw)
        dcol = dout @ self.col_W.T
        return ref_col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad)


class RefPooling:
    def __init__(self, ph, pw, stride=2, pad=0):
        self.ph, self.pw, self.stride, self.pad = ph, pw, stride, pad

    def forward(self, x):
        n, c, h, w = x.shape
        oh = (h - self.ph) // self.stride + 1
        ow = (w - self.pw) // self.stride + 1
        col = ref_im2col(x, self.ph, self.pw, self.stride, self.pad).reshape(-1, self.ph * self.pw)
        self.x = x
        self.arg_max = col.argmax(axis=1)
        return col.max(axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        size = self.ph * self.pw
        dmax = np.zeros((dout.size, size), dtype=dout.dtype)
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dcol = dmax.reshape(-1, self.ph * self.pw * dout.shape[3])
        return ref_col2im(dcol, self.x.shape, self.ph, self.pw, self.stride, self.pad)


class RefDropout:
    def __init__(self, ratio, rng):
        self.ratio, self.rng = ratio, rng

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = self.rng.random(x.shape) > self.ratio
            return x * self.mask
        return x * (1.0 - self.ratio)

    def backward(self, dout):
        return dout * self.mask


class RefNet:
    """The book's nets' structure around a list of layers: predict, loss, backprop."""

    def __init__(self, layers, param_layers, params):
        self.layers, self.param_layers, self.params = layers, param_layers, params
        self.last_layer = chapter.SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        for layer in self.layers:
            x = layer.forward(x, train_flg) if isinstance(layer, RefDropout) else layer.forward(x)
        return x

    def gradient(self, x, t):
        self.last_layer.forward(self.predict(x, True), t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate(self.param_layers, start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        return grads

    def accuracy(self, x, t, batch_size=100):
        acc = 0
        for i in range(x.shape[0] // batch_size):
            y = self.predict(x[i * batch_size : (i + 1) * batch_size])
            acc += np.sum(y.argmax(axis=1) == t[i * batch_size : (i + 1) * batch_size])
        return acc / x.shape[0]


def reference_of(net: Any) -> RefNet:
    """The reference net with ``net``'s architecture and a NumPy copy of its weights."""
    p = {k: np.array(xpnet.to_numpy(v)) for k, v in net.params.items()}
    layers, param_layers = [], []
    rng = np.random.default_rng(0)
    for layer in net._layer_list():
        kind = type(layer).__name__
        if kind == "Convolution":
            i = len(param_layers) + 1
            new = RefConvolution(p[f"W{i}"], p[f"b{i}"], layer.stride, layer.pad)
            param_layers.append(new)
        elif kind == "Affine":
            i = len(param_layers) + 1
            new = chapter.Affine(p[f"W{i}"], p[f"b{i}"])
            param_layers.append(new)
        elif kind == "Pooling":
            new = RefPooling(layer.pool_h, layer.pool_w, layer.stride, layer.pad)
        elif kind == "Relu":
            new = chapter.Relu()
        elif kind == "Dropout":
            new = RefDropout(layer.dropout_ratio, rng)
        else:  # pragma: no cover
            raise TypeError(kind)
        layers.append(new)
    return RefNet(layers, param_layers, p)


def ref_step(net: RefNet, x: np.ndarray, t: np.ndarray) -> None:
    grads = net.gradient(x, t)
    for k in net.params:
        net.params[k] -= LR * grads[k]


def xp_step(net: Any, x: Any, t: Any) -> None:
    loss, steps = net.loss_and_gradient(x, t, step=LR)
    for k, g in steps.items():
        net.params[k] -= g


# --- measurements ------------------------------------------------------------------------


def batch(n: int, shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, 10, n)


def make(name: str, backend: str, dtype: str = "float32") -> Any:
    """``name`` on ``backend`` (``"torch"``, ``"torch:cuda"``, ``"cupy"``, ...)."""
    lib, _, dev = backend.partition(":")
    b = xpnet.get_backend(lib, dev or None, dtype)
    if name == "SimpleConvNet":
        return xpnet.SimpleConvNet(backend=b, seed=0)
    return xpnet.DeepConvNet(backend=b, seed=0)


def interleaved(
    fns: dict[str, Callable[[], Any]],
    syncs: dict[str, Callable[[], None]],
    target_s: float,
    rounds: int = 5,
) -> dict[str, float]:
    """Seconds per call of each ``fn``, the best of ``rounds`` windows taken in turn.

    Taking the rows in turn, round after round, exposes each to the same load from other
    processes, so their ratios hold on a busy machine; the best window of each is the
    one least disturbed.
    """
    calls = {}
    for name, fn in fns.items():  # warm-up, and how many calls fill a window
        fn()
        syncs[name]()
        t0 = time.perf_counter()
        fn()
        syncs[name]()
        calls[name] = max(1, int(target_s / rounds / max(time.perf_counter() - t0, 1e-6)))
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            syncs[name]()
            best[name] = min(best[name], (time.perf_counter() - t0) / calls[name])
    return best


def step_times(
    name: str, target_s: float, backends: list[str], *, reference: bool = True
) -> dict[str, float]:
    """Seconds per training step: the reference (unless ``reference=False``, as for the
    GPU rows) and xpnet on each backend, in turn."""
    x, t = batch(100, (1, 28, 28))
    fns: dict[str, Callable[[], Any]] = {}
    syncs: dict[str, Callable[[], None]] = {}
    if reference:
        ref = reference_of(make(name, "numpy"))
        fns["reference numpy"], syncs["reference numpy"] = lambda: ref_step(ref, x, t), _noop
    for b in backends:
        net = make(name, b)
        xd, td = net.backend.asarray(x), net.backend.asarray(t)
        fns[f"xpnet {b}"] = lambda net=net, xd=xd, td=td: xp_step(net, xd, td)
        syncs[f"xpnet {b}"] = net.backend.synchronize
    return interleaved(fns, syncs, target_s)


def _noop() -> None:
    return None


def epoch_peak(fn: Callable[[], Any]) -> float:
    """Peak bytes NumPy allocates while ``fn`` runs (tracemalloc), above the start."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(peak - base)


def memory(n_train: int = 2000) -> dict[str, float]:
    """Peak memory of one SimpleConvNet epoch (train steps and the two evaluations)."""
    x, t = batch(n_train, (1, 28, 28))
    xt, tt = batch(n_train // 2, (1, 28, 28), seed=1)
    rows = np.random.default_rng(0).integers(0, n_train, size=(n_train // 100, 100))
    ref = reference_of(make("SimpleConvNet", "numpy"))

    def ref_epoch() -> None:
        for r in rows:
            ref_step(ref, x[r], t[r])
        ref.accuracy(x, t), ref.accuracy(xt, tt)

    net = make("SimpleConvNet", "numpy")

    def xp_epoch() -> None:
        trainer = xpnet.Trainer(net, x, t, xt, tt, epochs=1, verbose=False)
        trainer.train()

    return {"reference numpy": epoch_peak(ref_epoch), "xpnet numpy": epoch_peak(xp_epoch)}


def _gpu_rows(args: argparse.Namespace, backends: list[str]) -> int:
    """The GPU rows: each net's training step on each usable GPU backend, per second."""
    gpus = [b for b in backends if not make("SimpleConvNet", b).backend.on_cpu]
    if not gpus:
        print("no usable GPU backend among --backends", file=sys.stderr)
        return 1
    print("float32, batch 100, 28x28; best of 5 windows taken in turn, per step "
          "(gradient + SGD update), device synchronized")  # fmt: skip
    for name in args.nets.split(","):
        for row, s in step_times(name, args.seconds, gpus, reference=False).items():
            print(f"{name:14s} {row:16s} {s * 1e3:8.2f} ms  {1 / s:8.1f} steps/s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per row (10)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (1)")
    parser.add_argument("--nets", default="SimpleConvNet,DeepConvNet")
    parser.add_argument("--backends", default="numpy,torch",
                        help="numpy, torch, torch:cuda, cupy, ... (numpy,torch)")  # fmt: skip
    parser.add_argument(
        "--gpu-rows", action="store_true",
        help="steps per second on the GPU backends of --backends only: no reference row, no "
        "memory row; exit 1 when none of them is usable",
    )  # fmt: skip
    args = parser.parse_args(argv)
    backends = []
    for b in args.backends.split(","):
        try:
            lib, _, dev = b.partition(":")
            xpnet.get_backend(lib, dev or None)
        except xpnet.BackendError as exc:
            print(f"skipped {b}: {exc}")
            continue
        backends.append(b)
    if args.gpu_rows:
        return _gpu_rows(args, backends)
    if any(b.startswith("torch") for b in backends):
        import torch

        torch.set_num_threads(args.threads)
    limiter = limit_blas_threads(args.threads)
    try:
        print(f"float32, batch 100, 28x28, {args.threads} thread(s); best of 5 windows taken "
              "in turn, per step (gradient + SGD update)")  # fmt: skip
        for name in args.nets.split(","):
            times = step_times(name, args.seconds, backends)
            ref = times["reference numpy"]
            for row, s in times.items():
                print(f"{name:14s} {row:16s} {s * 1e3:8.2f} ms  {s / ref:5.2f}x reference")
        peaks = memory()
        ref = peaks["reference numpy"]
        for row, b in peaks.items():
            print(f"SimpleConvNet epoch peak {row:16s} {b / 2**20:8.1f} MiB  {b / ref:5.2f}x")
    finally:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())

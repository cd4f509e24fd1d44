"""Benchmark xpnet against the chapter's NumPy code, plain PyTorch and the matmul FLOP floor.

Usage::

    python scripts/bench.py [--iters 10000] [--repeats 3] [--out bench.json]
                            [--quick] [--synthetic] [--include-strict] [--peak-rss]
                            [--gpu-only]

One run measures, side by side, on every backend this machine can use:

(a) ``xpnet.train`` with the chapter's recipe (784-50-10, sigmoid, batch 100, lr 0.1,
    train and test accuracy every 600 steps) in float32 and float64;
(b) the chapter's own ``TwoLayerNet`` and training loop (``benchmarks.chapter``), the baseline;
(c) the same recipe in plain PyTorch eager float32 with hand-written backprop;
(d) the FLOP floor: the recipe's matmuls timed one shape at a time on each backend;
(e) the full numerical gradient: xpnet's vectorized one against the chapter's loop;
(f) time per training step for larger hidden layers and batches, in GFLOP/s;
(g) training with ``gradient="numerical"``: steps per second;
(h) the chapter-style closure ``numerical_gradient(f, x)`` against the chapter's loop;
(i) the training loop idle and beside one competing CPU-bound process (NumPy and torch);
(j) the recipe with SGD, Momentum and Adam: the cost of an optimizer;
(k) the book's optimizer comparison (ch06/optimizer_compare_mnist.py): xpnet's MultiLayerNet
    and optimizers against the book's code (``benchmarks.chapter``);
(l) a stacked sweep of 16 (and, on NumPy, 64) learning rates against as many sequential
    runs, NumPy and torch CPU: steps alone, the whole sweep, a model's step over its floor;
    on a GPU, 256 learning rates as one stack against one run (steps alone);
(n) the compiled training step (``compile=True``: jax.jit, torch.compile) against the
    eager one, the recipe and a 16-model stack, NumPy, torch and JAX (CUDA too where a GPU
    is usable, torch with CUDA graphs); ``--section compile`` runs only this section.

Loop times are the median of ``--repeats`` runs (taken round-robin over the rows), each
row after an untimed warm-up of a few steps, with the device synchronized before the clock
stops. The CPU time other processes took meanwhile is recorded too: on a shared machine
it explains outliers. Data: Fashion-MNIST when installed, else random bytes of the same
shape (said in the output). ``--out`` writes every number and the machine description as
JSON. ``--gpu-only`` times only the CUDA rows (a, c-g, l), for a borrowed GPU machine.
The code lives in the ``benchmarks`` package next to this folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the packages sit next to this folder.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from array_api_compat import is_numpy_namespace, is_torch_namespace  # noqa: E402

from benchmarks import BATCH, HIDDEN, LR  # noqa: E402
from benchmarks.compiled import bench_compiled, compiled_backends, compiled_report  # noqa: E402
from benchmarks.load import LOAD_STEPS, bench_under_load  # noqa: E402
from benchmarks.machine import machine  # noqa: E402
from benchmarks.optim import bench_optimizer_compare, bench_optimizer_cost  # noqa: E402
from benchmarks.report import finite, ratios, report  # noqa: E402
from benchmarks.sections import (  # noqa: E402
    backends,
    bench_closure_gradient,
    bench_numerical,
    bench_numerical_training,
    bench_scaling,
    bench_training,
    chapter_runs,
    label,
    load_data,
    peak_rss,
    torch_runs,
    xpnet_runs,
)
from benchmarks.stacked import (  # noqa: E402
    bench_stacked_steps,
    bench_stacked_sweep,
    learning_rates,
)
from benchmarks.timing import (  # noqa: E402
    eval_steps,
    matmul_plan,
    measure_matmul,
    other_cpu_seconds,
    others_since,
)
from xpnet._files import atomic_write  # noqa: E402
from xpnet.cli import UsageError, check_output  # noqa: E402
from xpnet.cli.framework import CommandParser  # noqa: E402

CLOSURE_ELEMENTS = 10_000
#: Configs of the recipe stacked on a GPU and timed against one run (target: <= 3x).
GPU_STACK = 256


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = CommandParser(prog="bench", description=__doc__.splitlines()[0])
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
        help="smoke run (a few minutes on 2 cores): 600 steps, one repeat, numerical "
        "gradient on batch 3 only, smaller scaling sweep, comparisons and stacks",
    )
    add("--synthetic", action="store_true", help="random data even when Fashion-MNIST is found")
    add("--include-strict", action="store_true", help="also array_api_strict (slow)")
    add(
        "--peak-rss",
        action="store_true",
        help="also run scripts/train.py --quiet and report its peak RSS",
    )
    add(
        "--gpu-only",
        action="store_true",
        help="time only the CUDA rows (no CPU row, no chapter loop); exit 1 without a GPU",
    )
    add(
        "--dask",
        action="store_true",
        help="also a 32-config sweep in-process, on --dask local:1 and local:2 (xpnet[dask])",
    )
    add(
        "--section",
        choices=("all", "compile"),
        default="all",
        help="compile: only (n), the compiled step against the eager one (at most 2000 steps)",
    )
    add("--out", type=Path, metavar="PATH", help="write every number as JSON")
    args = p.parse_args(argv)
    if args.gpu_only and (args.include_strict or args.peak_rss):
        p.error("--gpu-only times GPU rows only: drop --include-strict and --peak-rss")
    try:  # before minutes of benchmarks, not after them
        check_output("--out", args.out)
    except UsageError as exc:
        p.error(str(exc))
    if args.iters is None:
        args.iters = 600 if args.quick else 10_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick, gpu_only = args.quick, args.gpu_only
    skipped: list[dict[str, Any]] = []
    bs = backends(("float32", "float64"), args.include_strict, skipped, gpu_only=gpu_only)
    if gpu_only and not bs:
        reasons = {s["id"].split("/")[0]: s["reason"] for s in skipped}  # one per device
        why = "; ".join(f"{k}: {v}" for k, v in reasons.items())
        print(f"bench: --gpu-only: no GPU backend is usable here ({why})", file=sys.stderr)
        return 1
    data, name = load_data(args.synthetic)
    n_train, n_test = data[0].shape[0], data[2].shape[0]
    result: dict[str, Any] = {
        "machine": machine(),
        "config": {"iters": args.iters, "repeats": args.repeats, "quick": quick,
                   "batch_size": BATCH, "lr": LR, "hidden_size": HIDDEN,
                   "eval_steps": eval_steps(args.iters, n_train), "tf32": False,
                   "include_strict": args.include_strict, "gpu_only": gpu_only},
        "data": {"name": name, "synthetic": name == "synthetic", "n_train": n_train,
                 "n_test": n_test},
        "skipped": skipped,
    }  # fmt: skip
    target = 0.03 if quick else 0.3
    interference = result["interference"] = {}
    compile_steps = min(args.iters, 2000)
    if args.section == "compile":
        gpu_or_cpu = compiled_backends(skipped, gpu_only=gpu_only)
        result["compiled"] = bench_compiled(gpu_or_cpu, data, compile_steps, args.repeats)
        print(compiled_report(result["compiled"]))
        return _write(args.out, result)

    def section(name: str, fn: Callable[[], Any]) -> Any:
        """Run one section; note how much CPU other processes took meanwhile."""
        others, t0 = other_cpu_seconds(), time.perf_counter()
        out = fn()
        wall, other = time.perf_counter() - t0, others_since(others)
        share = None if other is None else other / (wall * (os.cpu_count() or 1))
        interference[name] = {"wall_seconds": wall, "other_cpu_seconds": other,
                              "other_share": share}  # fmt: skip
        return out

    # (d) the floor each training row is divided by, measured before and after the rest.
    plan = matmul_plan(args.iters, n_train, n_test)

    def floors(previous: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for b in bs:
            on_gpu = not b.on_cpu
            gemm_n = 8192 if on_gpu else (1024 if quick else 2048)
            key = f"{label(b)}/{b.dtype_name}"
            out[key] = measure_matmul(b, plan, gemm_n, target, previous.get(key))
        return out

    first_floor = section("floor", lambda: floors({}))

    # (a) xpnet, (b) the chapter, (c) plain PyTorch, their repeats interleaved.
    def training() -> list[dict[str, Any]]:
        it = args.iters
        runners = [("xpnet", label(b), b.dtype_name, xpnet_runs(b, data, it)) for b in bs]
        if not gpu_only:
            runners.append(("chapter", "numpy:cpu", "float64", chapter_runs(data, it)))
        for b in bs:
            if is_torch_namespace(b.xp) and b.dtype_name == "float32":  # plain PyTorch rows
                where = f"torch:{b.device_name}"
                runners.append(("pytorch", where, "float32", torch_runs(b.device_name, data, it)))
        return bench_training(runners, it, args.repeats)

    result["training"] = section("training", training)

    # (e) numerical gradient, float64; --quick: batch 3 only (the loop takes ~10 s on 100).
    batches = (3,) if quick else (3, 100)
    b64 = [b for b in bs if b.dtype_name == "float64"]
    result["numerical_gradient"] = section(
        "numerical_gradient",
        lambda: bench_numerical(b64, data, batches, args.repeats, chapter_loop=not gpu_only),
    )
    result["numerical_training"] = section(
        "numerical_training",
        lambda: bench_numerical_training(b64, data, 2 if quick else 10),
    )
    result["matmul"] = section("floor_again", lambda: floors(first_floor))

    # (f) scaling, float32.
    b32 = [b for b in bs if b.dtype_name == "float32"]
    hiddens = (50, 800) if quick else (50, 200, 800, 3200)
    sweep_batches = (100,) if quick else (100, 1000)
    result["scaling"] = section(
        "scaling",
        lambda: bench_scaling(b32, hiddens, sweep_batches, target, result["matmul"]),
    )

    # (h) the closure-style numerical gradient and (i) the loop under load: NumPy and torch
    # on the CPU.
    result["closure_gradient"], result["under_load"] = [], []
    cpu32 = [b for b in b32 if is_numpy_namespace(b.xp)]
    if not gpu_only:
        result["closure_gradient"] = section(
            "closure_gradient", lambda: bench_closure_gradient(CLOSURE_ELEMENTS, args.repeats)
        )
    # NumPy's BLAS threads and torch's own intra-op threads, each idle and beside a competitor
    loaded = cpu32 + [b for b in b32 if is_torch_namespace(b.xp) and b.on_cpu]
    if loaded:
        steps = min(LOAD_STEPS, args.iters)
        result["under_load"] = section("under_load", lambda: [
            row for b in loaded for row in bench_under_load(b, data, steps, args.repeats)
        ])  # fmt: skip

    # (l) on a GPU: 256 configs of the recipe as one stack against one run
    gpu32 = [b for b in b32 if b.device_name != "cpu"]
    if gpu32:
        steps = min(args.iters, 600)
        result["stacked"] = section("stacked_gpu", lambda: [
            row for b in gpu32 for row in bench_stacked_steps(
                b, data, steps, args.repeats, (GPU_STACK,), None, sequential_k=1)])  # fmt: skip
    # (j) optimizer cost, (k) the book's comparison, (l) stacked sweeps: CPU rows only.
    if cpu32:
        it, reps = args.iters, args.repeats
        result["optimizers"] = section(
            "optimizers", lambda: bench_optimizer_cost(cpu32[0], data, it, reps)
        )
        steps = min(it, 200 if quick else 2000)
        result["optimizer_compare"] = section(
            "optimizer_compare", lambda: bench_optimizer_compare(cpu32[0], data, steps, reps)
        )
        result["stacked"] = result.get("stacked", []) + section(
            "stacked", lambda: stacked_rows(b32, data, it, reps, quick, result["matmul"])
        )
    if args.peak_rss:
        dataset = "fashion-mnist" if name == "fashion-mnist" else "mnist-sample"
        result["peak_rss"] = peak_rss(dataset, args.iters)
        if not gpu_only:  # the 16-model stacked sweep of (l), its results in a scratch folder
            with tempfile.TemporaryDirectory() as tmp:
                lrs = ("--lr", *(f"{v:.6g}" for v in learning_rates(16)), "--out", tmp)
                result["peak_rss_sweep"] = peak_rss(dataset, args.iters, "sweep", lrs)
    if args.dask and not gpu_only:  # (m) the same sweep on Dask worker processes
        from benchmarks.dask_bench import dask_rows
        from xpnet import load_mnist

        sample = load_mnist(normalize=False, dataset="mnist-sample")
        result["dask"] = section("dask", lambda: dask_rows((*sample[0], *sample[1])))
    compilers = compiled_backends(skipped, gpu_only=gpu_only)
    result["compiled"] = section(
        "compiled", lambda: bench_compiled(compilers, data, compile_steps, args.repeats)
    )
    result["ratios"] = ratios(result)
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_end"] = list(os.getloadavg())

    print(report(result))
    print(compiled_report(result["compiled"]))
    if result.get("dask"):
        d = result["dask"]
        print(f"\n(m) {d['configs']} configs x {d['iters']} steps, {d['tasks']} stacks: "
              f"in-process {d['in_process_s']:.2f} s, local:1 {d['local1_s']:.2f} s, "
              f"local:{d['workers']} {d['localN_s']:.2f} s; throughput local:{d['workers']} / "
              f"local:1 {d['speedup_N_over_1']:.2f}x (target >= 1.6), local:1 / in-process "
              f"{d['overhead_1_over_in_process']:.2f}x (target <= 1.15)")  # fmt: skip
    return _write(args.out, result)


def _write(out: Path | None, result: dict[str, Any]) -> int:
    if out is not None:
        with atomic_write(out, "w") as fh:
            fh.write(json.dumps(finite(result), indent=1, allow_nan=False) + "\n")
        print(f"wrote {out}")
    return 0


def stacked_rows(
    b32: list, data: tuple, iters: int, repeats: int, quick: bool, matmul: dict[str, Any]
) -> list[dict]:
    """(l) on NumPy (K = 16 and 64) and torch CPU (K = 16), float32."""
    rows: list[dict] = []
    for b in b32:
        if b.device_name != "cpu":
            continue
        steps = min(iters, 600 if quick else 1200)  # steps alone: T(S) - T(S/2)
        ks = (16,) if is_torch_namespace(b.xp) else (16, 64)
        gemm = matmul.get(f"{label(b)}/float32", {}).get("gemm_gflops")
        rows += bench_stacked_steps(b, data, steps, repeats, ks, gemm)
        rows += bench_stacked_sweep(b, data, steps, repeats, 16)
    return rows


if __name__ == "__main__":
    sys.exit(main())

"""(n) The compiled training step against the eager one, on every backend that compiles.

The chapter's recipe through ``xpnet.train(..., compile=...)`` and a 16-learning-rate stack
through ``xpnet.sweep(..., compile=...)``: loop seconds (compilation excluded, as
``TrainHistory.loop_seconds`` reports them), the compile seconds of the first (cold) and
later runs, and the ratios within this one run: compiled over eager on the same backend,
and compiled over xpnet on NumPy.
"""

from __future__ import annotations

import statistics
from typing import Any

import xpnet

from . import BATCH, HIDDEN, INPUT, LR, OUTPUT
from .stacked import learning_rates

#: (backend, device) pairs timed; CUDA ones only where a GPU is usable. CuPy has no
#: compiled step (its rows are eager only).
CANDIDATES = (("numpy", "cpu"), ("torch", "cpu"), ("jax", "cpu"),
              ("torch", "cuda"), ("jax", "cuda"), ("cupy", "cuda"))  # fmt: skip
STACK = 16


def compiled_backends(skipped: list[dict], *, gpu_only: bool = False) -> list[xpnet.Backend]:
    """Every usable backend of :data:`CANDIDATES` in float32; the rest go to ``skipped``."""
    out = []
    for name, device in CANDIDATES:
        if gpu_only and device != "cuda":
            continue
        try:
            out.append(xpnet.get_backend(name, device, "float32"))
        except xpnet.BackendError as exc:
            skipped.append({"id": f"compile/{name}:{device}", "reason": str(exc)})
    return out


def bench_compiled(backends: list[xpnet.Backend], data: tuple, steps: int,
                   repeats: int) -> dict[str, Any]:  # fmt: skip
    """Rows ``{backend, kind, compiled, loop_seconds, compile_seconds...}`` and ratios."""
    rows = []
    for b in backends:
        modes = (False, True) if b.can_compile else (False,)
        for kind in ("recipe", f"stack{STACK}"):
            runs: dict[bool, list[Any]] = {m: [] for m in modes}
            for _ in range(repeats):  # round-robin: load changes hit both alike
                for m in modes:
                    runs[m].append(_run(kind, b, data, steps, m))
            for m, rs in runs.items():
                rows.append({
                    "backend": f"{b.name}:{b.device_name}", "kind": kind, "compiled": m,
                    "steps": steps, "loop_seconds": statistics.median(r[0] for r in rs),
                    "compile_seconds_first": rs[0][1],
                    "compile_seconds": statistics.median(r[1] for r in rs),
                    "compiles": rs[0][2], "final_loss": rs[0][3],
                })  # fmt: skip
    return {"rows": rows, "ratios": compiled_ratios(rows)}


def _run(kind: str, b: xpnet.Backend, data: tuple, steps: int, compile: bool) -> tuple:
    if kind == "recipe":
        net = xpnet.TwoLayerNet(INPUT, HIDDEN, OUTPUT, backend=b, seed=0)
        h = xpnet.train(net, *data, iters=steps, batch_size=BATCH, lr=LR, seed=0,
                        compile=compile)  # fmt: skip
    else:
        records = xpnet.sweep(xpnet.grid(lr=learning_rates(STACK)), *data, iters=steps,
                              batch_size=BATCH, backend=b, compile=compile)  # fmt: skip
        h = records[0].history
    return h.loop_seconds, h.compile_seconds, h.compiles, h.loss[-1]


def compiled_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compiled / eager loop seconds per backend and kind; compiled / xpnet NumPy."""
    by = {(r["backend"], r["kind"], r["compiled"]): r["loop_seconds"] for r in rows}
    out = []
    for (backend, kind, compiled), seconds in by.items():
        if not compiled:
            continue
        eager = by.get((backend, kind, False))
        numpy = by.get(("numpy:cpu", kind, False))
        out.append({
            "backend": backend, "kind": kind,
            "compiled_over_eager": seconds / eager if eager else None,
            "compiled_over_numpy": seconds / numpy if numpy else None,
        })  # fmt: skip
    return out


def compiled_report(result: dict[str, Any]) -> str:
    """The rows and ratios as a small table."""
    lines = ["(n) compiled training step (loop seconds exclude compilation)"]
    for r in result["rows"]:
        mode = "compiled" if r["compiled"] else "eager"
        lines.append(
            f"  {r['backend']:<12} {r['kind']:<8} {mode:<8} loop {r['loop_seconds']:8.3f} s"
            f"  compile {r['compile_seconds_first']:6.2f} s first, "
            f"{r['compile_seconds']:6.2f} s median, {r['compiles']} compiles"
        )
    for q in result["ratios"]:
        over_np = q["compiled_over_numpy"]
        lines.append(
            f"  {q['backend']:<12} {q['kind']:<8} compiled/eager {q['compiled_over_eager']:.2f}"
            + ("" if over_np is None else f", compiled/xpnet numpy {over_np:.2f}")
        )
    return "\n".join(lines)

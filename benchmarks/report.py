"""Ratios within one run, and the printed report of a result."""

from __future__ import annotations

import math
from typing import Any

from . import BATCH, HIDDEN, LR
from .stacked import stacked_ratios


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
    for row in result.get("closure_gradient", []):
        if row["impl"] == "xpnet":
            add("closure/loop", row["id"], row["id"].replace("closure-xpnet/", "closure-chapter/"))
    for row in result.get("under_load", []):
        if row["load"] == "busy":
            add("loaded/idle", row["id"], row["id"].replace("load-busy/", "load-idle/"))
    for row in result.get("optimizers", []):
        name = row["impl"].removeprefix("optim-")
        if name != "sgd":
            add(f"{name}/sgd", row["id"], row["id"].replace(row["impl"], "optim-sgd"))
    for row in result.get("optimizer_compare", []):
        if row["impl"].startswith("compare-book-"):
            ours = row["impl"].replace("-book-", "-xpnet-")
            xp_id = next((r["id"] for r in result["optimizer_compare"] if r["impl"] == ours), "")
            add("book/xpnet", row["id"], xp_id)
    out.extend(stacked_ratios(result.get("stacked", [])))
    return out


SECTIONS = ("training", "numerical_gradient", "scaling", "closure_gradient", "under_load",
            "optimizers", "optimizer_compare")  # fmt: skip


def _seconds_by_id(result: dict[str, Any]) -> dict[str, float]:
    rows = [r for name in SECTIONS for r in result.get(name, [])]
    by_id = {r["id"]: r["seconds"] for r in rows}
    by_id.update({f"floor/{k}": v["floor_seconds"] for k, v in result["matmul"].items()})
    return by_id


def finite(obj: Any) -> Any:
    """The result with NaN and infinities as null, so the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Aligned text table: numbers right-aligned, text left, ``None`` as "-"."""
    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        for i in range(len(headers))
    ]

    def line(vals: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def fmt(v: Any) -> str:
    """A cell: ints with thousands separators, floats to 4 significant digits."""
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
    """The printed form of a result: header lines, then one table per section."""
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
    out.append(table(["impl", "backend", "device", "dtype", "loop s", "samples/s", "test acc",
                       "/chapter", "/pytorch", "/floor"], rows))  # fmt: skip
    out += [
        "",
        "(d) FLOP floor: each recipe matmul shape timed alone (best of 3 windows, in a pass "
        "before and one after sections a-c and e), times summed over the recipe; GEMM: "
        "n x n @ n x n",
    ]
    rows = [[*k.split("/"), v["recipe_gflop"], v["recipe_shapes_gflops"], v["floor_seconds"],
             v["gemm_n"], v["gemm_gflops"]] for k, v in result["matmul"].items()]  # fmt: skip
    out.append(table(["backend", "dtype", "recipe GFLOP", "shapes GFLOP/s", "floor s",
                       "GEMM n", "GEMM GFLOP/s"], rows))  # fmt: skip
    out += ["", "(e) numerical gradient of all 39,760 parameters, float64"]
    rows = [[r["impl"], f"{r['backend']}:{r['device']}", r["batch"], r["seconds"],
             ratio.get(("vectorized/loop", r["id"])), r["max_abs_diff"]]
            for r in result["numerical_gradient"]]  # fmt: skip
    out.append(table(["impl", "backend", "batch", "seconds", "/loop", "max|diff|"], rows))
    if result.get("numerical_training"):
        out += ["", "(g) training with gradient='numerical' (the chapter's commented-out line), "
                "float64, batch 100"]  # fmt: skip
        rows = [[f"{r['backend']}:{r['device']}", r["steps"], r["seconds"],
                 r["steps_per_second"]] for r in result["numerical_training"]]  # fmt: skip
        out.append(table(["backend", "steps", "seconds", "steps/s"], rows))
    out += ["", "(f) one training step (loss_and_gradient + SGD update), float32"]
    rows = [[f"{r['backend']}:{r['device']}", r["hidden"], r["batch"], 1e3 * r["seconds"],
             r["gflops"], r["percent_of_gemm"]] for r in result["scaling"]]  # fmt: skip
    out.append(table(["backend", "hidden", "batch", "ms/step", "GFLOP/s", "% GEMM"], rows))
    if result.get("closure_gradient"):
        out += ["", "(h) chapter-style numerical_gradient(f, x), float64, numpy, one element "
                "at a time; f = sum(x**2) or x[0] (the loop's own cost)"]  # fmt: skip
        rows = [[r["impl"], r.get("f", "sum-squares"), r["n"], r["seconds"],
                 ratio.get(("closure/loop", r["id"])), r["max_abs_diff"]]
                for r in result["closure_gradient"]]  # fmt: skip
        out.append(table(["impl", "f", "elements", "seconds", "/loop", "max|diff|"], rows))
    if result.get("under_load"):
        out += ["", "(i) training loop idle and beside one CPU-bound process (the competitor "
                "column), the chapter's recipe"]  # fmt: skip
        rows = [[r["load"], f"{r['backend']}:{r['device']}", r["dtype"], r["steps"],
                 r["seconds"], ratio.get(("loaded/idle", r["id"])), r["competitor"]]
                for r in result["under_load"]]  # fmt: skip
        out.append(table(["load", "backend", "dtype", "steps", "loop s", "/idle",
                          "competitor"], rows))  # fmt: skip
    if result.get("optimizers"):
        out += ["", "(j) the recipe with each optimizer, numpy float32, evaluations every epoch "
                "(targets: momentum/sgd <= 1.15, adam/sgd <= 1.3)"]  # fmt: skip
        rows = [[r["optimizer"], r["lr"], r["seconds"],
                 ratio.get((f"{r['optimizer']}/sgd", r["id"])), r["final_loss"],
                 r["final_test_acc"]] for r in result["optimizers"]]  # fmt: skip
        out.append(table(["optimizer", "lr", "loop s", "/sgd", "final loss", "test acc"], rows))
    if result.get("optimizer_compare"):
        r0 = result["optimizer_compare"][0]
        out += ["", f"(k) the book's optimizer comparison: 784-[100]*4-10 relu, He init, batch "
                f"128, {r0['steps']} steps, float32 images in [0, 1]; "
                "xpnet against the book's code (target: book/xpnet >= 2)"]  # fmt: skip
        rows = [[r["optimizer"], r["impl"].split("-")[1], r["dtype"], r["seconds"],
                 ratio.get(("book/xpnet", r["id"])), r["final_loss"]]
                for r in result["optimizer_compare"]]  # fmt: skip
        out.append(table(["optimizer", "impl", "dtype", "seconds", "book/xpnet",
                          "final loss"], rows))  # fmt: skip
    if result.get("stacked"):
        out += ["", "(l) stacked sweep of learning rates (geomspace(0.01, 1, K)), the recipe: "
                "stacked run against K sequential train runs (targets: steps <= 0.55, sweep "
                "<= 0.65, step/floor <= 1.5, k64/k16 per model <= 1; on a GPU, 256 configs "
                "<= 3x one run)"]  # fmt: skip
        by = {(q["name"], q["numerator"]): q["value"] for q in result["ratios"]}
        rows = [[r["kind"], r["part"], f"{r['backend']}:{r['device']}", r["models"], r["steps"],
                 r["seconds"], 1e3 * r["seconds_per_model_step"],
                 by.get((f"stacked/sequential {r['part']}", r["id"])),
                 by.get((f"stacked/one run {r['part']}", r["id"])),
                 by.get(("stacked step/floor", r["id"])),
                 next((v for (n, i), v in by.items() if i == r["id"] and n.startswith("k")),
                      None)] for r in result["stacked"]]  # fmt: skip
        out.append(table(["kind", "part", "backend", "K", "steps", "seconds", "ms/model-step",
                          "/sequential", "/one run", "/floor", "/smaller K"],
                         rows))  # fmt: skip
        out.append("steps: T(S) - T(S/2) of runs evaluating only after their first and last "
                   "step; sweep: wall clock with evaluations every epoch")  # fmt: skip
    for key in ("peak_rss", "peak_rss_sweep"):
        if result.get(key):
            p = result[key]
            out += [
                "",
                f"peak RSS of `{p['command']}`: {p['peak_rss_mib']:.0f} MiB "
                f"(exit {p['returncode']}, {p['seconds']:.1f} s)",
            ]
    for s in result["skipped"]:
        out.append(f"skipped {s['id']}: {s['reason']}")
    return "\n".join(out)

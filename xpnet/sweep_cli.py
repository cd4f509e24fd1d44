"""``xpnet-sweep`` (scripts/sweep.py): a grid of configs as stacked models, with resume.

Each flag takes one or more values and the sweep is their product. Results stream to
``OUT/results.jsonl`` as configs finish (one JSON line each, appended atomically); a rerun
with the same ``--out`` skips finished configs. At the end: a summary table sorted by final
test accuracy (mean ± std over seeds), ``summary.csv`` and figures. ``--halving`` stops the
worse half of each stack at a few evaluation steps (successive halving); the configs it
stopped count as done on a rerun and are listed after the finished ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends import BackendError, get_backend
from .cli import add_backend_flags, add_data_flags
from .data import DataError, load_data
from .mlp import ACTIVATIONS
from .optimizers import OPTIMIZERS
from .sweeps import SweepRecord, check_rungs, config_key, grid, normalize, sweep

__all__ = ["PRESETS", "default_rungs", "read_results", "sweep_main"]

#: The next chapter's two comparisons (the book's ch06 scripts): 784-[100]*4-10, relu,
#: batch 128, 2000 steps, each as one sweep.
PRESETS: dict[str, dict[str, Any]] = {
    "optimizer-compare": {
        "configs": [
            {"optimizer": "sgd", "lr": 0.01},
            {"optimizer": "momentum", "lr": 0.01},
            {"optimizer": "adagrad", "lr": 0.01},
            {"optimizer": "adam", "lr": 0.001},
        ],
        "label": "optimizer",
    },
    "weight-init-compare": {
        "configs": [
            {"weight_init_std": 0.01, "lr": 0.01},
            {"weight_init_std": "xavier", "lr": 0.01},
            {"weight_init_std": "he", "lr": 0.01},
        ],
        "label": "weight_init_std",
    },
}
_PRESET_COMMON = {
    "hidden_sizes": (100, 100, 100, 100),
    "activation": "relu",
    "weight_init_std": "he",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet-sweep",
        description="Train the product of the given values as stacked models.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_backend_flags(p)
    add_data_flags(p, "mnist")
    s = p.add_argument_group("the grid (each flag takes one or more values)")
    s.add_argument("--lr", type=float, nargs="+", default=[0.1])
    s.add_argument("--hidden-size", type=int, nargs="+", default=[50])
    s.add_argument(
        "--hidden-sizes",
        nargs="+",
        metavar="H1,H2,...",
        help="layer lists such as 100,100,100 (instead of --hidden-size)",
    )
    s.add_argument("--activation", nargs="+", choices=sorted(ACTIVATIONS), default=["sigmoid"])
    s.add_argument("--optimizer", nargs="+", choices=list(OPTIMIZERS), default=["sgd"])
    s.add_argument(
        "--weight-init-std", nargs="+", default=["0.01"], help="numbers or xavier/sigmoid/he/relu"
    )
    s.add_argument("--weight-decay", type=float, nargs="+", default=[0.0])
    for flag in ("momentum", "beta1", "beta2", "decay-rate"):
        s.add_argument(
            f"--{flag}",
            type=float,
            nargs="+",
            help="(optimizers that take it; default: the optimizer's own)",
        )
    s.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 for every config")
    s.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="the book's ch06 comparison (ignores the grid flags)",
    )
    p.add_argument(
        "--iters", type=int, help="steps per config (default: 10000; 2000 with --preset)"
    )
    p.add_argument("--batch-size", type=int, help="(default: 100; 128 with --preset)")
    p.add_argument("--eval-interval", type=int, help="steps between evaluations (an epoch)")
    p.add_argument("--max-models", type=int, help="at most this many models per stack")
    p.add_argument(
        "--halving",
        type=int,
        nargs="*",
        metavar="STEP",
        help="successive halving: at each of these evaluation steps every stack keeps the "
        "better half of its configs (by train accuracy, a config's seeds together); without "
        "values, the evaluation steps nearest iters/8, iters/4 and iters/2",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/sweep"),
        help="results.jsonl, summary.csv and figures go here; rerun to resume",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask scheduler (tcp://host:8786) or local:N worker processes",
    )
    for part in ("ca", "cert", "key"):
        p.add_argument(f"--dask-tls-{part}", type=Path, help=f"TLS {part} file for --dask")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def build_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The configs the flags describe (a preset, or the product of the grid flags)."""
    seeds = list(range(args.seeds))
    if args.preset:
        base = [{**_PRESET_COMMON, **c} for c in PRESETS[args.preset]["configs"]]
        return [{**c, "seed": s} for s in seeds for c in base]
    if args.hidden_sizes:
        try:
            layers = [tuple(int(h) for h in v.split(",")) for v in args.hidden_sizes]
        except ValueError:
            raise ValueError(
                f"--hidden-sizes takes lists like 100,100; got {args.hidden_sizes}"
            ) from None
    else:
        layers = [(h,) for h in args.hidden_size]
    inits = [_init_value(v) for v in args.weight_init_std]
    lists: dict[str, Any] = {
        "lr": args.lr,
        "hidden_sizes": layers,
        "activation": args.activation,
        "weight_init_std": inits,
        "weight_decay": args.weight_decay,
        "seed": seeds,
    }
    for flag in ("momentum", "beta1", "beta2", "decay_rate"):
        if getattr(args, flag) and not any(flag in OPTIMIZERS[o].HYPER for o in args.optimizer):
            takers = [o for o, c in OPTIMIZERS.items() if flag in c.HYPER]
            raise ValueError(
                f"--{flag.replace('_', '-')} applies to --optimizer {' or '.join(takers)}, "
                f"not {' '.join(args.optimizer)}"
            )
    configs = []
    for opt in args.optimizer:
        extra = {}
        for name in OPTIMIZERS[opt].HYPER:
            values = getattr(args, name, None)
            if name != "lr" and values:
                extra[name] = values
        configs += grid(optimizer=opt, **lists, **extra)
    return configs


def _init_value(v: str) -> float | str:
    try:
        return float(v)
    except ValueError:
        return v


def default_rungs(iters: int, interval: int) -> list[int]:
    """``--halving`` without values: the evaluation steps nearest ``iters`` / 8, / 4 and / 2.

    Deduplicated and increasing; step 0 (nothing learned yet) and steps from ``iters - 1``
    on (nothing left to train) are dropped, so the list may be empty.
    """
    near = (math.floor(iters / f / interval + 0.5) * interval for f in (8, 4, 2))
    return sorted({r for r in near if 0 < r < iters - 1})


def _check_run(path: Path, run: dict[str, Any]) -> None:
    """Results in one ``--out`` folder come from one run setting (steps, batch size, data,
    dtype, halving rungs): the first run writes it to ``run.json``; a rerun that differs is
    refused. A setting missing from an older ``run.json`` counts as None (its default)."""
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except json.JSONDecodeError:
            before = None
        old = before if isinstance(before, dict) else {}
        if before is None or any(old.get(k) != run.get(k) for k in {*old, *run}):
            changed = ", ".join(
                f"{k} {old.get(k)!r} -> {run.get(k)!r}" for k in dict.fromkeys([*run, *old])
                if old.get(k) != run.get(k)
            )  # fmt: skip
            raise ValueError(
                f"--out {path.parent} holds a sweep run with other settings ({changed}); "
                "give another --out, or the same settings to resume it"
            )
        return
    path.write_text(json.dumps(run, indent=1) + "\n")


def read_results(path: Path) -> dict[str, SweepRecord]:
    """Finished configs in ``results.jsonl`` by :func:`config_key`; a torn last line (a
    killed write) is ignored."""
    out: dict[str, SweepRecord] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = SweepRecord.from_dict(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        out[config_key(rec.config)] = rec
    return out


def append_result(path: Path, record: SweepRecord) -> None:
    """One line per record in one ``write`` to an ``O_APPEND`` file, then fsync."""
    line = json.dumps(_plain(record.as_dict()), allow_nan=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def summarize(records: list[SweepRecord], *, halving: bool = False) -> list[dict[str, Any]]:
    """Rows of configs that differ only in seed: mean and std of the final test accuracy.

    With ``halving``, each row also has ``stopped_at``: the earliest rung where one of its
    seeds was stopped (its accuracy is the one at that rung), None when all trained to the
    end. Finished rows come first, by accuracy; then stopped rows, those that went further
    first: an accuracy after fewer steps is not ranked against one after all of them.
    """
    groups: dict[str, list[SweepRecord]] = {}
    for r in records:
        c = {k: v for k, v in normalize(r.config).items() if k != "seed"}
        groups.setdefault(json.dumps(_plain(c), sort_keys=True), []).append(r)
    rows = []
    for key, recs in groups.items():
        acc = [r.history.test_acc[-1] if r.history.test_acc else float("nan") for r in recs]
        row = {
            **json.loads(key),
            "seeds": len(recs),
            "test_acc_mean": float(np.mean(acc)),
            "test_acc_std": float(np.std(acc)),
            "diverged": sum(r.diverged for r in recs),
        }
        if halving:
            stops = [r.stopped_at for r in recs if r.stopped_at is not None]
            row["stopped_at"] = min(stops) if stops else None
        rows.append(row)

    def rank(r: dict[str, Any]) -> tuple[int, int, float]:
        stop = r.get("stopped_at")
        acc = float(np.nan_to_num(r["test_acc_mean"], nan=-1.0))
        return (0, 0, -acc) if stop is None else (1, -stop, -acc)

    rows.sort(key=rank)
    return rows


def _varying(rows: list[dict[str, Any]]) -> list[str]:
    skip = {"seeds", "test_acc_mean", "test_acc_std", "diverged", "stopped_at"}
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in skip]
    return [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]


def _table(rows: list[dict[str, Any]]) -> str:
    cols = _varying(rows) or ["lr"]
    halving = any("stopped_at" in r for r in rows)
    head = " ".join(f"{c:>16}" for c in cols) + "   test acc (mean ± std)  seeds  diverged"
    lines = [head + ("  stopped at" if halving else "")]
    for r in rows:
        vals = " ".join(f"{_fmt(r.get(c, '-')):>16}" for c in cols)
        stop = f"  {_fmt(r.get('stopped_at')):>10}" if halving else ""
        lines.append(
            f"{vals}   {r['test_acc_mean']:.4f} ± {r['test_acc_std']:.4f}"
            f"      {r['seeds']:>5}  {r['diverged']:>8}{stop}"
        )
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:  # a config that trained to the end has no stop step: an empty cell
        return ""
    return ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        names = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(fh, fieldnames=names, restval="")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(v) for k, v in r.items()})


def sweep_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-sweep``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    prog = "xpnet-sweep"
    try:
        for flag in ("iters", "batch_size", "seeds", "eval_interval", "max_models"):
            if getattr(args, flag) is not None and getattr(args, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer")
        if args.iters is None:
            args.iters = 2000 if args.preset else 10_000
        if args.batch_size is None:
            args.batch_size = 128 if args.preset else 100
        configs = build_configs(args)
        keys = [config_key(c) for c in configs]
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".write-test"
        probe.write_text("")
        probe.unlink()
        backend = get_backend(args.backend, args.device, args.dtype)
    except (ValueError, OSError, BackendError) as exc:
        parser.exit(2, f"{prog}: error: {exc}\n")
    results_path = args.out / "results.jsonl"
    try:
        data = load_data(
            args.dataset,
            data_dir=args.data_dir,
            download=not args.offline,
            verify=not args.no_verify,
        )
        print(f"{prog}: data: {data.describe()}")
        x, t = data.x_train.reshape(len(data.x_train), -1), data.t_train
        xt, tt = data.x_test.reshape(len(data.x_test), -1), data.t_test
    except DataError as exc:
        parser.exit(1, f"{prog}: error: {exc}\n")
    # the rungs need the evaluation interval, hence the data's size; they are part of the
    # run setting, so they are settled (and checked) before run.json is written
    rungs = None
    try:
        if args.halving is not None:
            interval = args.eval_interval or max(len(x) // args.batch_size, 1)
            rungs = args.halving or default_rungs(args.iters, interval)
            if not rungs:
                raise ValueError(
                    f"--halving: no evaluation step (every {interval} steps) lies between 0 "
                    f"and the last step {args.iters - 1}; give a smaller --eval-interval, "
                    "more --iters, or the rung steps"
                )
            try:
                rungs = list(check_rungs(rungs, iters=args.iters, interval=interval))
            except ValueError as exc:  # the library names its argument; here it is a flag
                raise ValueError(
                    str(exc).replace("set eval_interval", "set --eval-interval")
                ) from None
        run = {"iters": args.iters, "batch_size": args.batch_size,
               "eval_interval": args.eval_interval, "dataset": args.dataset,
               "data_dir": None if args.data_dir is None else str(args.data_dir),
               "dtype": backend.dtype_name, "halving": rungs}  # fmt: skip
        _check_run(args.out / "run.json", run)
    except (ValueError, OSError) as exc:
        parser.exit(2, f"{prog}: error: {exc}\n")
    done = read_results(results_path)
    todo = [i for i, k in enumerate(keys) if k not in done]
    print(
        f"{prog}: {len(configs)} configs, {len(configs) - len(todo)} already in "
        f"{results_path}, {len(todo)} to train on {backend.name} {backend.dtype_name}"
        + ("" if rungs is None else f"; halving at steps {', '.join(map(str, rungs))}")
    )

    def on_result(i: int, rec: SweepRecord) -> None:
        append_result(results_path, rec)

    try:
        if todo:
            todo_configs = [configs[i] for i in todo]
            kw = {
                "iters": args.iters,
                "batch_size": args.batch_size,
                "backend": backend,
                "eval_interval": args.eval_interval,
                "max_models": args.max_models,
                "progress": not args.quiet,
                "on_result": on_result,
                "halving": rungs,
            }
            if args.dask:
                from .distributed import SweepTaskError, connect

                if args.backend is None:  # each worker's XPNET_BACKEND decides
                    kw["backend"], kw["dtype"] = None, backend.dtype_name
                try:
                    with connect(args.dask, tls_ca=args.dask_tls_ca,
                                 tls_cert=args.dask_tls_cert,
                                 tls_key=args.dask_tls_key) as client:  # fmt: skip
                        sweep(todo_configs, x, t, xt, tt, client=client, **kw)
                except (ImportError, OSError, ValueError) as exc:
                    parser.exit(2, f"{prog}: error: --dask {args.dask}: {exc}\n")
                except SweepTaskError as exc:
                    parser.exit(1, f"{prog}: error: {exc}\n(the other configs are in "
                                   f"{results_path})\n")  # fmt: skip
            else:
                sweep(todo_configs, x, t, xt, tt, **kw)
    except KeyboardInterrupt:
        # counted from the file: Ctrl-C may land between a result's write and the counter
        kept = len(set(keys) & set(read_results(results_path)))
        print(
            f"{prog}: interrupted; {kept} of {len(configs)} configs finished, kept in "
            f"{results_path} (rerun to resume)",
            file=sys.stderr,
        )
        return 130
    except (ValueError, MemoryError) as exc:
        parser.exit(1, f"{prog}: error: {exc}\n")
    done = read_results(results_path)
    records = [done[k] for k in keys]
    rows = summarize(records, halving=rungs is not None)
    _write_csv(args.out / "summary.csv", rows)
    print(_table(rows))
    figures = _figures(args, records, rows)
    print(
        f"{prog}: wrote {results_path}, {args.out / 'summary.csv'}"
        + "".join(f", {f}" for f in figures)
    )
    return 0


def _figures(args: argparse.Namespace, records: list[SweepRecord], rows) -> list[Path]:
    try:
        from .sweep_plots import plot_heatmap, plot_loss_curves
    except ImportError:
        return []
    out = []
    label = PRESETS[args.preset]["label"] if args.preset else None
    fig = plot_loss_curves(
        records, label=label, smooth=bool(args.preset), title=args.preset or "sweep"
    )
    out.append(args.out / "curves.png")
    fig.savefig(out[-1], dpi=100)
    varying = _varying(rows)
    if len(varying) == 2:
        fig = plot_heatmap(rows, *varying)
        out.append(args.out / "heatmap.png")
        fig.savefig(out[-1], dpi=100)
    return out

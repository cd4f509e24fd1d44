"""``xpnet-sweep`` (scripts/sweep.py): a grid of configs as stacked models, with resume.

Each flag takes one or more values and the sweep is their product. Results stream to
``OUT/results.jsonl`` as configs finish (one JSON line each, appended atomically); a rerun
with the same ``--out`` skips finished configs. At the end: a summary table sorted by final
test accuracy (mean ± std over seeds), ``summary.csv`` and figures. ``--halving`` stops the
worse half of the configs at a few evaluation steps (successive halving, ranked across
every stack); the configs it stopped count as done on a rerun and are listed after the
finished ones. ``--validation`` holds out part of the training set: halving, the summary
and ``--save-best`` then choose on it, and ``--patience`` stops a config early.
``--log-dir`` writes each config as a TensorBoard run.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends import Backend, BackendError, get_backend
from ..data import DataError
from ..mlp import ACTIVATIONS
from ..optimizers import OPTIMIZERS
from ..step import COMPILE_FLAGS, COMPILE_HELP
from ..sweeps import check_rungs, config_key, grid, sweep
from .framework import (
    CliRun,
    CommandParser,
    UsageError,
    byte_size,
    fraction,
    load,
    positive_int,
    run_command,
    write_text,
)
from .locking import lock_folder
from .outputs import check_outputs
from .sweep_checks import (
    OUT_FILES,
    check_disk_room,
    check_grid_size,
    check_model_size,
    open_results,
    unique_configs,
)
from .sweep_figures import save_sweep_figures
from .sweep_outputs import BestKeeper, run_namer
from .sweep_results import (
    append_result,
    check_run_setting,
    read_results,
    summarize,
    summary_csv,
    table,
)

__all__ = ["PRESETS", "build_configs", "default_rungs", "sweep_main"]

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


def _parser() -> CommandParser:
    p = CommandParser(
        prog="xpnet-sweep",
        description="Train the product of the given values as stacked models.",
    )
    p.add_run_flags("mnist")
    s = p.add_argument_group("the grid (each flag takes one or more values)")
    s.add_argument("--lr", type=float, nargs="+", default=[0.1], help="learning rates")
    s.add_argument(
        "--hidden-size", type=int, nargs="+", default=[50], help="hidden units (one layer)"
    )
    s.add_argument(
        "--hidden-sizes",
        nargs="+",
        metavar="H1,H2,...",
        help="layer lists such as 100,100,100 (instead of --hidden-size)",
    )
    s.add_argument(
        "--activation",
        nargs="+",
        choices=sorted(ACTIVATIONS),
        default=["sigmoid"],
        help="hidden layer activations",
    )
    s.add_argument(
        "--optimizer", nargs="+", choices=list(OPTIMIZERS), default=["sgd"], help="update rules"
    )
    s.add_argument(
        "--weight-init-std", nargs="+", default=["0.01"], help="numbers or xavier/sigmoid/he/relu"
    )
    s.add_argument(
        "--weight-decay", type=float, nargs="+", default=[0.0], help="L2 weight decay lambdas"
    )
    for flag in ("momentum", "beta1", "beta2", "decay-rate"):
        s.add_argument(
            f"--{flag}",
            type=float,
            nargs="+",
            help="(optimizers that take it; default: the optimizer's own)",
        )
    s.add_argument("--seeds", type=positive_int, default=1, help="seeds 0..N-1 for every config")
    s.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="the book's ch06 comparison (ignores the grid flags)",
    )
    p.add_argument(
        "--iters", type=positive_int, help="steps per config (default: 10000; 2000 with --preset)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, help="rows per step (default: 100; 128 with --preset)"
    )
    p.add_argument(
        "--eval-interval", type=positive_int, help="steps between evaluations (default: an epoch)"
    )
    p.add_argument("--max-models", type=positive_int, help="at most this many models per stack")
    p.add_argument(
        "--max-stack-bytes",
        type=byte_size,
        metavar="BYTES",
        help="memory bound of one stack, e.g. 512M or 8G (default: half the GPU's free "
        "memory; on the CPU a quarter of the available RAM)",
    )
    p.add_argument(
        "--validation",
        type=fraction,
        metavar="FRACTION",
        help="hold out this fraction of the training set, the same rows for every config: "
        "halving, the summary and --save-best choose on it, and the test set is evaluated "
        "once per config, for the report",
    )
    p.add_argument(
        "--patience",
        type=positive_int,
        metavar="N",
        help="early stopping (needs --validation): a config stops after N evaluations "
        "without a better validation score and keeps its best evaluation's parameters",
    )
    p.add_argument(
        "--save-best",
        type=positive_int,
        metavar="K",
        help="write the K best configs' checkpoints as OUT/best-1.npz ... (the format of "
        "xpnet-train --save: scripts/evaluate.py and --resume read them)",
    )
    p.add_argument(
        "--log-dir",
        type=Path,
        metavar="DIR",
        help="write each config as a TensorBoard run here (pip install 'xpnet[tensorboard]')",
    )
    p.add_argument(
        "--halving",
        type=int,
        nargs="*",
        metavar="STEP",
        help="successive halving: at each of these evaluation steps the better half of the "
        "configs go on (by validation accuracy with --validation, else train accuracy; a "
        "config's seeds together); without values, the evaluation steps nearest iters/8, "
        "iters/4 and iters/2",
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
        p.add_argument(
            f"--dask-tls-{part}", type=Path, metavar="FILE", help=f"TLS {part} file for --dask"
        )
    p.add_argument(
        "--wait", action="store_true", help="if another run uses --out, wait for it to end"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--compile", choices=COMPILE_FLAGS, default="auto", help=COMPILE_HELP)
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
            raise UsageError(
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
            raise UsageError(
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


def sweep_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-sweep``; returns 0 or exits with one line on stderr."""
    hint = "use a smaller --max-models or --batch-size, or free memory"
    return run_command(_parser(), argv, _sweep, memory_hint=hint)


def _sweep(args: argparse.Namespace, run: CliRun) -> None:
    with run.usage_errors(ValueError, BackendError):
        if args.iters is None:
            args.iters = 2000 if args.preset else 10_000
        if args.batch_size is None:
            args.batch_size = 128 if args.preset else 100
        if args.patience is not None and args.validation is None:
            raise UsageError("--patience counts evaluations without validation improvement: "
                             "give --validation too (e.g. --validation 0.2)")  # fmt: skip
        # the grid of one seed checks every value; its size is known before the whole is built
        one_seed = build_configs(argparse.Namespace(**{**vars(args), "seeds": 1}))
        for c in one_seed:
            config_key(c)
        check_grid_size(len(one_seed) * args.seeds, args)
        configs, keys = unique_configs(run, build_configs(args))
        log = None
        if args.log_dir is not None:
            from ..sweeps.logs import TensorBoardLog

            try:
                log = TensorBoardLog(args.log_dir, name=run_namer(configs))
            except ImportError as exc:
                raise UsageError(f"--log-dir: {exc}") from None
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror}") from None
        lock_folder(run, args.out, wait=args.wait)
        open_results(run, args.out / "results.jsonl")
        check_outputs([("--out", args.out / name) for name in OUT_FILES])
        backend = get_backend(args.backend, args.device, args.dtype)
        check_model_size(configs, args, backend)
    results_path = args.out / "results.jsonl"
    with run.failures(DataError):
        data = load(args, run, args.dataset)
    x, t = data.x_train.reshape(len(data.x_train), -1), data.t_train
    xt, tt = data.x_test.reshape(len(data.x_test), -1), data.t_test
    # the rungs need the evaluation interval, hence the data's size; they are part of the
    # run setting, so they are settled (and checked) before run.json is written
    with run.usage_errors(ValueError):
        n_train = len(x) - (0 if args.validation is None else round(len(x) * args.validation))
        rungs = _rungs(args, n_train)
        setting = {"iters": args.iters, "batch_size": args.batch_size,
                   "eval_interval": args.eval_interval, "dataset": args.dataset,
                   "data_dir": None if args.data_dir is None else str(args.data_dir),
                   "dtype": backend.dtype_name, "halving": rungs}  # fmt: skip
        # settings older run.json files lack are written only when used, so they resume
        setting |= {k: getattr(args, k) for k in ("validation", "patience")
                    if getattr(args, k) is not None}  # fmt: skip
        check_run_setting(args.out / "run.json", setting)
    done = read_results(results_path)
    best = None if args.save_best is None else BestKeeper(args.save_best, done)

    def on_result(i: int, rec: Any) -> None:
        append_result(results_path, rec)
        if log is not None:
            log(i, rec)
        if best is not None:
            best.add(rec)

    todo = [i for i, k in enumerate(keys) if k not in done]
    check_disk_room(len(todo), args, results_path)
    print(
        f"{run.prog}: {len(configs)} configs, {len(configs) - len(todo)} already in "
        f"{results_path}, {len(todo)} to train on {backend.name} {backend.dtype_name}"
        + ("" if rungs is None else f"; halving at steps {', '.join(map(str, rungs))}")
    )
    # counted from the file: Ctrl-C may land between a result's write and any counter
    run.kept = lambda: (
        f"{len(set(keys) & set(read_results(results_path)))} of {len(configs)} configs "
        f"finished, kept in {results_path} (rerun to resume)"
    )
    run.stage = "while training"
    if todo:
        kw = {
            "iters": args.iters,
            "batch_size": args.batch_size,
            "backend": backend,
            "eval_interval": args.eval_interval,
            "max_models": args.max_models,
            "progress": not args.quiet,
            "on_result": on_result,
            "halving": rungs,
            "validation": args.validation,
            "patience": args.patience,
            "keep_params": best is not None,
            "max_bytes": args.max_stack_bytes,
            "compile": COMPILE_FLAGS[args.compile],
        }
        todo_configs = [configs[i] for i in todo]
        with run.failures(ValueError):
            if args.dask:
                _sweep_on_dask(args, run, backend, kw, todo_configs, (x, t, xt, tt))
            else:
                sweep(todo_configs, x, t, xt, tt, **kw)
    run.kept, run.stage = None, "while writing the summary"
    run.written.append(str(results_path))
    done = read_results(results_path)
    records = [done[k] for k in keys]
    rows = summarize(records, halving=rungs is not None)
    write_text(run, args.out / "summary.csv", summary_csv(rows))
    print(table(rows))
    label = PRESETS[args.preset]["label"] if args.preset else None
    save_sweep_figures(run, args.out, records, rows, label=label, smooth=bool(args.preset),
                       title=args.preset or "sweep")  # fmt: skip
    if best is not None:
        run.stage = "while writing the best configs' checkpoints"
        best.write(run, args.out, records, _checkpoint_meta(args, data))
    if log is not None:
        run.written.append(str(args.log_dir))
    if not run.failed:  # else the error line at the end says it
        print(f"{run.prog}: {run.done()}")


def _checkpoint_meta(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """Provenance of a --save-best checkpoint, with the run's flags as xpnet-train names
    them (``--resume`` takes the config from there)."""
    run_flags = {"iters": args.iters, "batch_size": args.batch_size,
                 "eval_interval": args.eval_interval, "validation": args.validation,
                 "patience": args.patience, "dataset": args.dataset, "gradient": "backprop",
                 "data_dir": None if args.data_dir is None else str(args.data_dir)}  # fmt: skip
    return {"dataset": data.name, "data_fingerprint": data.fingerprint,
            "data_source": data.source, "config": run_flags}  # fmt: skip


def _rungs(args: argparse.Namespace, n_train: int) -> list[int] | None:
    """The ``--halving`` rungs, checked against the evaluation steps; None without it."""
    if args.halving is None:
        return None
    interval = args.eval_interval or max(n_train // args.batch_size, 1)
    rungs = args.halving or default_rungs(args.iters, interval)
    if not rungs:
        raise ValueError(
            f"--halving: no evaluation step (every {interval} steps) lies between 0 "
            f"and the last step {args.iters - 1}; give a smaller --eval-interval, "
            "more --iters, or the rung steps"
        )
    return list(check_rungs(rungs, iters=args.iters, interval=interval))


def _sweep_on_dask(
    args: argparse.Namespace,
    run: CliRun,
    backend: Backend,
    kw: dict[str, Any],
    configs: list[dict[str, Any]],
    data: tuple[Any, Any, Any, Any],
) -> None:
    from ..distributed import SweepTaskError, connect

    if args.backend is None:  # each worker's XPNET_BACKEND decides
        kw["backend"], kw["dtype"] = None, backend.dtype_name
    try:
        with connect(args.dask, tls_ca=args.dask_tls_ca, tls_cert=args.dask_tls_cert,
                     tls_key=args.dask_tls_key) as client:  # fmt: skip
            sweep(configs, *data, client=client, **kw)
    except (ImportError, OSError, ValueError) as exc:
        raise UsageError(f"--dask {args.dask}: {exc}") from None
    except SweepTaskError as exc:
        run.fail(f"{exc}; the other configs are in {args.out / 'results.jsonl'}")

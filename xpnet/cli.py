"""Command lines: ``xpnet-train`` (scripts/train.py), ``xpnet-evaluate`` (scripts/evaluate.py).

Every user error ends in one line on stderr and an exit status: 2 for a bad flag value or
output path (found before any work starts), 1 for what can only fail later (data, memory, a
full disk, a diverged run), 130 for Ctrl-C. :func:`cli_errors` / :func:`run_cli` give the
same behaviour to the other scripts.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ._files import atomic_write
from ._progress import write
from .backends import BACKENDS, DTYPES, Backend, BackendError, get_backend
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DATASETS, DataError, DataSet, load_data
from .nets import ACTIVATIONS, EVAL_CHUNK, INIT_GAINS, MultiLayerNet, TwoLayerNet
from .optimizers import OPTIMIZERS, get_optimizer
from .scaling import input_scale
from .training import (
    GRADIENT_MODES,
    DivergenceWarning,
    TrainHistory,
    TrainingDivergedError,
    train,
)

__all__ = [
    "UsageError",
    "check_output",
    "cli_errors",
    "evaluate_main",
    "figure_main",
    "run_cli",
    "train_main",
]

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# Backends whose float16 matmul falls back to NumPy's slow loops (no BLAS kernel).
SLOW_FLOAT16 = ("numpy", "array_api_strict")
# Library parameter names in messages, and the flags that set them here.
_FLAG_WORDING = (
    (re.compile(r"download=False"), "--offline"),
    (re.compile(r"download=True"), "without --offline"),
    (re.compile(r"verify=False"), "--no-verify"),
    (
        re.compile(r"(?<![\w/.-])(lr|iters|batch_size|hidden_size|data_dir)(?:(=)|(?![\w/.-]))"),
        None,
    ),
)


class UsageError(Exception):
    """A bad flag value or output path, found before any work starts."""


# ---------------------------------------------------------------------- errors and exits
def flag_wording(message: str) -> str:
    """``message`` with the library's parameter names replaced by this CLI's flags."""
    for pattern, flag in _FLAG_WORDING:
        if flag is not None:
            message = pattern.sub(flag, message)
        else:
            message = pattern.sub(
                lambda m: "--" + m[1].replace("_", "-") + (" " if m[2] else ""), message
            )
    return message


class CliRun:
    """What a command has done so far, for the one line printed when it stops early.

    Attributes
    ----------
    prog : str
        The command's name, the prefix of every line.
    stage : str
        Where the work is, e.g. ``"after step 600 of 10000"``; empty before it starts.
    written : list of str
        Output files completed so far.
    memory_hint : str
        What to do when memory runs out.
    """

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.stage = ""
        self.written: list[str] = []
        self.memory_hint = "use smaller sizes or free memory"

    def done(self) -> str:
        return "wrote " + ", ".join(self.written) if self.written else "nothing written"

    def line(self, kind: str, message: str) -> None:
        print(f"{self.prog}: {kind}: {message}", file=sys.stderr, flush=True)

    def fail(self, message: str, status: int = EXIT_FAILURE) -> NoReturn:
        """Print ``prog: error: message`` and exit with ``status``."""
        self.line("error", message)
        raise SystemExit(status)


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):  # NumPy's "Unable to allocate", CuPy's OutOfMemoryError
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(exc, oom)


@contextmanager
def cli_errors(prog: str) -> Iterator[CliRun]:
    """Turn Ctrl-C, running out of memory and OS errors into one line and an exit status.

    Ctrl-C: ``interrupted <stage>; nothing written`` (or what was), exit 130. Memory: the
    cause and :attr:`CliRun.memory_hint`, exit 1. ``OSError`` (a full disk, a vanished
    folder): the file and the system's reason, exit 1. Everything else passes through.
    """
    run = CliRun(prog)
    try:
        yield run
    except KeyboardInterrupt:
        where = f" {run.stage}" if run.stage else ""
        print(file=sys.stderr)  # end a progress bar's line
        run.line("interrupted", f"stopped{where}; {run.done()}")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if _out_of_memory(exc):
            where = f" {run.stage}" if run.stage else ""
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            run.fail(f"out of memory{where} ({detail}); {run.memory_hint}; {run.done()}")
        if isinstance(exc, OSError):
            name = f"{exc.filename}: " if exc.filename else ""
            run.fail(f"{name}{exc.strerror or exc}; {run.done()}")
        raise


def run_cli(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a script's ``main(argv)`` with :func:`cli_errors`."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> int:
            with cli_errors(prog):
                return main(*args, **kwargs)

        return wrapper

    return decorate


@contextmanager
def _printing_warnings(run: CliRun) -> Iterator[None]:
    """Show library warnings as ``prog: warning: ...`` lines, in the CLI's flag wording."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        first, *rest = flag_wording(str(message)).splitlines() or [""]
        write(f"{run.prog}: warning: {first}", file=sys.stderr)
        for text in rest:
            write(text, file=sys.stderr)

    with warnings.catch_warnings():
        warnings.filterwarnings("default", category=UserWarning)
        warnings.filterwarnings("default", category=RuntimeWarning)
        warnings.filterwarnings("always", category=DivergenceWarning)
        warnings.showwarning = show
        yield


# ------------------------------------------------------------------------ flag checking
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:  # numpy.random.default_rng takes non-negative seeds only
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every default shown, none shown as ``None`` or ``False``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend (defaults from XPNET_BACKEND, XPNET_DEVICE, XPNET_DTYPE)")
    g.add_argument("--backend", help=f"{', '.join(BACKENDS)} (default: numpy)")
    g.add_argument("--device", help="cpu, cuda, cuda:1, device1, ... (default: the library's)")
    g.add_argument("--dtype", choices=DTYPES, help="parameter dtype (default: float32)")


def add_data_flags(p: argparse.ArgumentParser, default: str | None) -> None:
    g = p.add_argument_group("data (defaults from XPNET_DATA_DIR, XPNET_OFFLINE)")
    help_ = "data set" if default else "data set (default: the one the weights were trained on)"
    g.add_argument("--dataset", choices=DATASETS, default=default, help=help_)
    g.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="the only folder read for the four IDX .gz files (downloaded there if missing; "
        "default: ~/.cache/xpnet/DATASET)",
    )  # fmt: skip
    g.add_argument("--offline", action="store_true", help="never download (XPNET_OFFLINE=1)")
    g.add_argument(
        "--no-verify", action="store_true",
        help="trust data files whose MD5 differs from the published one (custom IDX data); "
        "the format checks stay on",
    )  # fmt: skip


def check_output(flag: str, path: Path | None) -> None:
    """Fail before any work, not after it, when ``path`` cannot be written.

    A file is created and removed next to ``path``: permission bits say nothing about
    read-only mounts or pseudo file systems such as ``/proc``.
    """
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path} cannot be written ({exc.strerror})") from None


def _figure_format(flag: str, path: Path | None) -> str | None:
    """The matplotlib format for ``path``, checked before any work (PNG without suffix)."""
    if path is None:
        return None
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UsageError("plotting needs matplotlib: pip install 'xpnet[plot]'") from None
    fmt = path.suffix[1:].lower() or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise UsageError(
            f"{flag} {path}: matplotlib cannot write .{fmt} files; use one of "
            f"{', '.join('.' + f for f in sorted(supported))}"
        )
    return fmt


def _check_memory(hidden_size: int, input_size: int = 784, classes: int = 10) -> None:
    """Refuse a net whose initial weights alone exceed this machine's memory."""
    # the host RNG draws float64 weights, then the backend holds its own copy
    need = (input_size + 1 + classes) * hidden_size * (8 + 8)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: rely on MemoryError later
        return
    if need > total:
        raise UsageError(
            f"--hidden-size {hidden_size} needs about {need / 2**30:.1f} GiB for the weights "
            f"alone, more than this machine's {total / 2**30:.1f} GiB; use a smaller --hidden-size"
        )


def _check_float16(backend: Backend) -> None:
    if backend.dtype_name == "float16" and backend.name in SLOW_FLOAT16:
        raise UsageError(
            f"--dtype float16 on {backend.name}: NumPy has no float16 matrix-multiply kernels, "
            "so it runs ~100x slower than float32; use --dtype float32 here, or float16 on "
            "torch, cupy or jax"
        )


def _check_data_flags(args: argparse.Namespace) -> None:
    if args.dataset == "mnist-sample" and args.data_dir is not None:
        raise UsageError("--data-dir has no effect with --dataset mnist-sample (bundled data)")


def _load(args: argparse.Namespace, run: CliRun, dataset: str) -> DataSet:
    """The data as uint8 pixels and labels; one line names what was used."""
    run.stage = "while loading the data"
    data = load_data(
        dataset, data_dir=args.data_dir, download=not args.offline, verify=not args.no_verify
    )
    write(f"{run.prog}: data: {data.describe()}")
    return data


# ------------------------------------------------------------------------------- train
def _layer_list(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes like 100,100,100, got {text!r}")
    return sizes


def _init_std(text: str) -> float | str:
    if text.lower() in INIT_GAINS:
        return text.lower()
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or one of {', '.join(INIT_GAINS)}, got {text!r}"
        ) from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet-train",
        description="Train the chapter's TwoLayerNet with mini-batch SGD on any backend.",
        formatter_class=_HelpFormatter,
    )
    add_backend_flags(p)
    add_data_flags(p, "mnist")
    p.add_argument("--iters", type=_positive_int, default=10_000, help="SGD steps")
    p.add_argument("--batch-size", type=_positive_int, default=100, help="rows per step")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate")
    p.add_argument("--hidden-size", type=_positive_int, default=50, help="hidden units")
    p.add_argument(
        "--hidden-sizes",
        type=_layer_list,
        metavar="H1,H2,...",
        help="hidden layers, e.g. 100,100,100 (a MultiLayerNet; instead of --hidden-size)",
    )
    p.add_argument(
        "--weight-init-std",
        type=_init_std,
        default=0.01,
        help="initial weight std: a number, xavier (sigmoid) or he (relu)",
    )
    p.add_argument(
        "--weight-decay", type=_non_negative_float, default=0.0, help="L2 weight decay lambda"
    )
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd", help="update rule")
    for flag, what in (
        ("momentum", "momentum, nesterov"),
        ("beta1", "adam"),
        ("beta2", "adam"),
        ("decay-rate", "rmsprop"),
    ):
        p.add_argument(
            f"--{flag}", type=_non_negative_float, help=f"({what}; default: the optimizer's own)"
        )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="CHECKPOINT",
        help="continue the run saved there (with --save) up to --iters",
    )
    p.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid", help="hidden layer")
    p.add_argument("--gradient", choices=GRADIENT_MODES, default="backprop", help="method")
    p.add_argument("--seed", type=_seed, default=0, help="seed of initial weights and batches")
    p.add_argument("--metrics-out", type=Path, metavar="PATH", help="write metrics JSON here")
    p.add_argument(
        "--plot", type=Path, metavar="PATH",
        help="write accuracy curves; the suffix picks the format (.png, .pdf, .svg, ...)",
    )  # fmt: skip
    p.add_argument("--save", type=Path, metavar="PATH", help="write a checkpoint (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-train``; returns 0 or exits with one line on stderr."""
    parser = _train_parser()
    args = parser.parse_args(argv)
    with cli_errors("xpnet-train") as run:
        run.memory_hint = "use a smaller --hidden-size or --batch-size, or free memory"
        try:
            for flag in ("--metrics-out", "--plot", "--save"):
                check_output(flag, getattr(args, flag[2:].replace("-", "_")))
            plot_format = _figure_format("--plot", args.plot)
            _check_data_flags(args)
            _check_memory(args.hidden_size)
            backend = get_backend(args.backend, args.device, args.dtype)
            _check_float16(backend)
        except (UsageError, BackendError) as exc:
            parser.exit(EXIT_USAGE, f"xpnet-train: error: {flag_wording(str(exc))}\n")
        try:
            with _printing_warnings(run):
                _run_training(args, backend, run, plot_format)
        except (DataError, TrainingDivergedError, CheckpointError) as exc:
            run.fail(flag_wording(str(exc)))
        except UsageError as exc:
            parser.exit(EXIT_USAGE, f"xpnet-train: error: {exc}\n")
    return 0


def _run_training(
    args: argparse.Namespace, backend: Backend, run: CliRun, plot_format: str | None
) -> None:
    data = _load(args, run, args.dataset)
    x_train = data.x_train.reshape(len(data.x_train), -1)
    x_test = data.x_test.reshape(len(data.x_test), -1)
    run.stage = "while building the net"
    net, optimizer, history = _net_and_optimizer(args, backend, x_train.shape[1], data)
    run.stage = f"at step 1 of {args.iters}"
    if not args.quiet:
        slow_start = (
            "; accuracy near chance (0.1000) in the first epochs is this recipe's expected "
            "slow start"
            if args.activation == "sigmoid"
            else ""
        )
        write(
            f"xpnet-train: backend {backend.name} on {backend.device_name}, "
            f"{backend.dtype_name}{slow_start}"
        )

    def on_epoch(h: Any) -> None:
        run.stage = f"after step {h.eval_steps[-1] + 1} of {args.iters}"
        if not args.quiet:
            write(f"train acc, test acc | {h.train_acc[-1]:.4f}, {h.test_acc[-1]:.4f}")

    history = train(
        net, x_train, data.t_train, x_test, data.t_test,
        iters=args.iters, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        gradient=args.gradient, progress=not args.quiet, on_epoch=on_epoch,
        optimizer=optimizer, history=history, eval_interval=args.eval_interval,
    )  # fmt: skip
    run.stage = f"after all {args.iters} steps"
    if history.eval_steps and history.eval_steps[-1] == args.iters - 1:
        final_train, final_test = history.train_acc[-1], history.test_acc[-1]
    else:  # the last evaluation was before the last step: score the final parameters
        final_train = net.accuracy(x_train, data.t_train, scale=input_scale(x_train))
        final_test = net.accuracy(x_test, data.t_test, scale=input_scale(x_test))
    diverged = bool(getattr(history, "diverged", False))
    final_loss = history.loss[-1]
    sps = args.iters * args.batch_size / history.loop_seconds
    verdict = "final (DIVERGED: try a smaller --lr)" if diverged else "final"
    print(
        f"{verdict}: train acc {final_train:.4f}, test acc {final_test:.4f}, "
        f"loss {final_loss:.4f}, loop {history.loop_seconds:.2f} s ({sps:,.0f} samples/s)",
        flush=True,
    )
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if args.save is not None:
        meta = {
            "dataset": data.name,
            "data_fingerprint": data.fingerprint,
            "data_source": data.source,
            "config": config,
            "step": args.iters,
            "seed": args.seed,
            "history": history.as_dict(),
        }
        state = optimizer.state_dict()
        _write(
            run,
            args.save,
            lambda path: save_checkpoint(path, net, optimizer_state=state, meta=meta),
        )
    if args.metrics_out is not None:
        metrics = {
            "config": config,
            "dataset": data.name,
            "data": {
                "name": data.name,
                "source": data.source,
                "fingerprint": data.fingerprint,
                "train": len(x_train),
                "test": len(x_test),
            },
            "backend": backend.name,
            "device": backend.device_name,
            "dtype": backend.dtype_name,
            **history.as_dict(),
            "final_train_acc": final_train,
            "final_test_acc": final_test,
            "final_loss": final_loss,
            "samples_per_second": sps,
            "diverged": diverged,
        }

        def dump(path: Path) -> None:
            with atomic_write(path, "w") as fh:
                fh.write(json.dumps(metrics, indent=1) + "\n")

        _write(run, args.metrics_out, dump)
    if args.plot is not None:
        from .plots import plot_training_curves

        fig = plot_training_curves(history)

        def draw(path: Path) -> None:
            with atomic_write(path) as fh:
                fig.savefig(fh, format=plot_format, dpi=100)

        _write(run, args.plot, draw)


#: Flags a resumed run takes from its checkpoint (everything that decides the numbers).
_RESUMED = (
    "batch_size",
    "lr",
    "hidden_size",
    "hidden_sizes",
    "activation",
    "gradient",
    "seed",
    "weight_init_std",
    "weight_decay",
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "decay_rate",
    "eval_interval",
    "dataset",
)


def _net_and_optimizer(args: argparse.Namespace, backend: Backend, input_size: int, data: Any):
    """The net, optimizer and history to train: new, or restored with --resume."""
    args.eval_interval = None
    if args.resume is not None:
        ckpt = load_checkpoint(args.resume)
        config = ckpt.meta.get("config", {})
        missing = [k for k in ("optimizer", "seed") if k not in config]
        if missing or "history" not in ckpt.meta:
            raise UsageError(
                f"--resume {args.resume}: not a checkpoint of a run saved with --save "
                "by this version (no optimizer state or history)"
            )
        if ckpt.meta.get("data_fingerprint") not in (None, data.fingerprint):
            raise UsageError(
                f"--resume {args.resume}: it was trained on other data "
                f"({ckpt.meta.get('dataset')}); give the same --dataset/--data-dir"
            )
        for k in _RESUMED:
            if k in config:
                value = config[k]
                setattr(args, k, tuple(value) if k == "hidden_sizes" and value else value)
        history = TrainHistory(**ckpt.meta["history"])
        if len(history.loss) >= args.iters:
            raise UsageError(
                f"--resume {args.resume}: it already ran {len(history.loss)} "
                f"steps; give --iters above that"
            )
        net = ckpt.to_net(backend=backend)
        optimizer = _optimizer(args)
        optimizer.load_state_dict(ckpt.optimizer_state, net.params)
        args.eval_interval = max(len(data.x_train) // args.batch_size, 1)
        return net, optimizer, history
    if args.hidden_sizes and len(args.hidden_sizes) > 1:
        net = MultiLayerNet(input_size, list(args.hidden_sizes), 10, activation=args.activation,
                            weight_init_std=args.weight_init_std,
                            weight_decay_lambda=args.weight_decay, backend=backend,
                            seed=args.seed)  # fmt: skip
    else:
        hidden = args.hidden_sizes[0] if args.hidden_sizes else args.hidden_size
        net = TwoLayerNet(input_size, hidden, 10, args.weight_init_std, backend=backend,
                          seed=args.seed, activation=args.activation,
                          weight_decay_lambda=args.weight_decay)  # fmt: skip
    return net, _optimizer(args), None


def _optimizer(args: argparse.Namespace) -> Any:
    names = OPTIMIZERS[args.optimizer].HYPER
    hyper = {"lr": args.lr}
    for k in ("momentum", "beta1", "beta2", "decay_rate"):
        value = getattr(args, k, None)
        if value is None:
            continue
        if k not in names:
            flag = "--" + k.replace("_", "-")
            raise UsageError(f"{flag} does not apply to --optimizer {args.optimizer}")
        hyper[k] = value
    try:
        return get_optimizer(args.optimizer, **hyper)
    except ValueError as exc:
        raise UsageError(flag_wording(str(exc))) from None


def _write(run: CliRun, path: Path, writer: Callable[[Path], Any]) -> None:
    """Write one output (atomically, by ``writer``); a failure is one line and exit 1."""
    try:
        writer(path)
    except OSError as exc:
        run.fail(f"cannot write {path} ({exc.strerror or exc}); {run.done()}")
    run.written.append(str(path))


# ---------------------------------------------------------------------------- evaluate
def _evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet-evaluate",
        description="Test accuracy, per-class accuracy and confusion matrix of saved weights.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("weights", type=Path, help=".npz written by xpnet-train --save")
    add_backend_flags(p)
    add_data_flags(p, None)
    return p


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-evaluate``; returns 0 or exits with one line on stderr."""
    parser = _evaluate_parser()
    args = parser.parse_args(argv)
    with cli_errors("xpnet-evaluate") as run:
        run.memory_hint = "free memory or use another --backend"
        try:
            _check_data_flags(args)
            backend = get_backend(args.backend, args.device, args.dtype)
            ckpt = load_checkpoint(args.weights)
            net = ckpt.to_net(backend=backend)
        except (BackendError, CheckpointError, UsageError) as exc:
            hint = ""
            if isinstance(exc, CheckpointError) and not args.weights.exists():
                hint = f" (write one with: xpnet-train --save {args.weights})"
            parser.exit(EXIT_USAGE, f"xpnet-evaluate: error: {exc}{hint}\n")
        trained_on = ckpt.meta.get("dataset")
        dataset = args.dataset or trained_on or "mnist"
        try:
            with _printing_warnings(run):
                if args.dataset and trained_on and args.dataset != trained_on:
                    run.line("warning", f"{args.weights} was trained on {trained_on}, "
                             f"evaluating on {args.dataset} as asked")  # fmt: skip
                data = _load(args, run, dataset)
                fp = ckpt.meta.get("data_fingerprint")
                if data.name == trained_on and fp and fp != data.fingerprint:
                    run.line("warning", f"this copy of {data.name} differs from the one "
                             f"{args.weights} was trained on")  # fmt: skip
        except DataError as exc:
            run.fail(flag_wording(str(exc)))
        x_test = data.x_test.reshape(len(data.x_test), -1)
        if net.sizes[0] != x_test.shape[1]:
            parser.exit(
                EXIT_USAGE,
                f"xpnet-evaluate: error: {args.weights}: input size is {net.sizes[0]}, but "
                f"{data.name} images have {x_test.shape[1]} pixels\n",
            )
        run.stage = "while evaluating"
        scale = input_scale(x_test)  # raw pixels are scaled as train() scales them
        pred = np.concatenate(
            [
                backend.to_numpy(
                    backend.xp.argmax(net.logits(x_test[i : i + EVAL_CHUNK], scale=scale), axis=-1)
                )
                for i in range(0, len(x_test), EVAL_CHUNK)
            ]
        )
        print(format_report(pred, np.asarray(data.t_test, dtype=np.int64), dataset=data.name))
    return 0


def format_report(pred: np.ndarray, labels: np.ndarray, *, dataset: str, classes: int = 10) -> str:
    """Test accuracy, per-class accuracy and the confusion matrix as text."""
    confusion = np.bincount(labels * classes + pred, minlength=classes * classes)
    confusion = confusion.reshape(classes, classes)
    per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    lines = [f"test accuracy on {dataset}: {np.mean(pred == labels):.4f} ({len(labels)} images)"]
    lines.append("per-class accuracy:")
    lines.extend(
        f"  {c}: {per_class[c]:.4f}  ({confusion[c].sum()} images)" for c in range(classes)
    )
    lines.append("confusion matrix (rows: true label, columns: predicted):")
    lines.append("     " + "".join(f"{c:>6}" for c in range(classes)))
    lines.extend(f"  {r:>2} " + "".join(f"{v:>6}" for v in confusion[r]) for r in range(classes))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures
def figure_main(
    argv: Sequence[str] | None,
    *,
    description: str,
    default_out: str,
    draw: Any,
    add_arguments: Any = None,
) -> int:
    """The shared command line of the chapter's figure scripts.

    ``draw(backend, args)`` returns ``(figure, summary_line)``; the figure is saved to
    ``--out`` and shown only with ``--show``. The backend comes from ``XPNET_BACKEND`` /
    ``XPNET_DEVICE``, always in float64 as the chapter computes.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path(default_out), help="figure to write")
    parser.add_argument("--dpi", type=_positive_int, default=100, help="resolution")
    parser.add_argument("--show", action="store_true", help="also open a window")
    args = parser.parse_args(argv)
    prog = parser.prog
    with cli_errors(prog) as run:
        try:
            check_output("--out", args.out)
            fmt = _figure_format("--out", args.out)
            backend = get_backend(dtype="float64")
        except (UsageError, BackendError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        from . import plots

        run.stage = "while drawing"
        try:
            fig, summary = draw(backend, args)
        except ImportError as exc:  # matplotlib missing
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE

        def save(path: Path) -> None:
            with atomic_write(path) as fh:
                fig.savefig(fh, format=fmt, dpi=args.dpi)

        _write(run, args.out, save)
        print(summary)
        print(f"wrote {args.out} ({backend.name} on {backend.device_name})")
        if args.show:
            plots.show(fig)
    return 0

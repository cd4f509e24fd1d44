"""``xpnet-train`` (scripts/train.py): the chapter's net trained on any backend.

Writes the metrics (``--metrics-out``), a checkpoint (``--save``, resumable with
``--resume``) and accuracy curves (``--plot``); errors and exits as every command
(:mod:`xpnet.cli.framework`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .._memory import HOST_AND_DEVICE, gib, over_memory
from .._progress import write
from ..backends import SPECS, Backend, BackendError, get_backend
from ..checkpoint import CheckpointError, save_checkpoint
from ..data import DataError
from ..nets import ACTIVATIONS, INIT_GAINS
from ..optimizers import OPTIMIZERS, get_optimizer
from ..scaling import input_scale
from ..step import COMPILE_FLAGS, COMPILE_HELP
from ..training import GRADIENT_MODES, TrainingDivergedError, train
from ..validation import history_through
from .framework import (
    CliRun,
    CommandParser,
    UsageError,
    figure_format,
    fraction,
    load,
    non_negative_float,
    positive_float,
    positive_int,
    run_command,
    save_figure,
    seed,
    write_output,
    write_text,
)
from .outputs import check_outputs
from .resume import Resumed, given_flags, read_resume
from .signals import deferred_interrupts
from .train_nets import NETS, build_net, fill_net_defaults, net_inputs

__all__ = ["train_main"]


def _check_memory(hidden_size: int, input_size: int = 784, classes: int = 10) -> None:
    """Refuse a net whose initial weights alone exceed this machine's memory."""
    need = (input_size + 1 + classes) * hidden_size * HOST_AND_DEVICE
    total = over_memory(need)
    if total is not None:
        raise UsageError(
            f"--hidden-size {hidden_size} needs about {gib(need)} for the weights "
            f"alone, more than this machine's {gib(total)}; use a smaller --hidden-size"
        )


def _check_float16(backend: Backend) -> None:
    if backend.dtype_name == "float16" and backend.slow_float16:
        fast = ", ".join(name for name, spec in SPECS.items() if not spec.slow_float16)
        raise UsageError(
            f"--dtype float16 on {backend.name}: NumPy has no float16 matrix-multiply kernels, "
            f"so it runs ~100x slower than float32; use --dtype float32 here, or float16 on "
            f"{fast}"
        )


def _check_compile(args: argparse.Namespace, backend: Backend) -> None:
    if args.compile == "on" and args.gradient != "backprop":
        raise UsageError("--compile on compiles the backprop step: use --compile auto or off "
                         "with --gradient numerical")  # fmt: skip
    if args.compile == "on" and not backend.can_compile:
        raise UsageError(f"--compile on: backend {backend.name!r} on {backend.device_name} "
                         "cannot compile a training step; use --compile auto or off")  # fmt: skip


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
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or one of {', '.join(INIT_GAINS)}, got {text!r}"
        ) from None


def _train_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="xpnet-train",
        description="Train the chapter's TwoLayerNet with mini-batch SGD, or the book's conv "
        "nets, on any backend.",
    )
    p.add_run_flags("mnist")
    p.add_argument(
        "--net", choices=list(NETS),
        help="mlp: the chapter's TwoLayerNet (MultiLayerNet with --hidden-sizes); "
        "simple-convnet, deep-convnet: the book's chapter 7 and 8 nets, trained as their "
        "scripts train them (Adam, lr 0.001, 20 epochs, --eval-sample 1000) (default: mlp)",
    )  # fmt: skip
    p.add_argument("--iters", type=positive_int,
                   help="steps (default: 10000; conv nets: 20 epochs)")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=100, help="rows per step")
    p.add_argument("--lr", type=positive_float,
                   help="learning rate (default: 0.1; conv nets: 0.001)")  # fmt: skip
    p.add_argument("--hidden-size", type=positive_int,
                   help="hidden units (default: 50; simple-convnet: 100)")  # fmt: skip
    p.add_argument(
        "--eval-sample", type=positive_int, metavar="N",
        help="score the per-epoch accuracies on the first N train and test rows; the final "
        "test accuracy uses the whole test set (default: all rows; conv nets: 1000)",
    )  # fmt: skip
    p.add_argument(
        "--hidden-sizes",
        type=_layer_list,
        metavar="H1,H2,...",
        help="hidden layers, e.g. 100,100,100 (a MultiLayerNet; instead of --hidden-size)",
    )
    p.add_argument(
        "--weight-init-std",
        type=_init_std,
        help="initial weight std: a number, xavier (sigmoid) or he (relu) (default: 0.01; "
        "deep-convnet: he, always)",
    )
    p.add_argument(
        "--weight-decay", type=non_negative_float, default=0.0, help="L2 weight decay lambda"
    )
    p.add_argument("--optimizer", choices=list(OPTIMIZERS),
                   help="update rule (default: sgd; conv nets: adam)")  # fmt: skip
    for flag, what in (
        ("momentum", "momentum, nesterov"),
        ("beta1", "adam"),
        ("beta2", "adam"),
        ("decay-rate", "rmsprop"),
    ):
        p.add_argument(
            f"--{flag}", type=non_negative_float, help=f"({what}; default: the optimizer's own)"
        )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="CHECKPOINT",
        help="continue the run saved there (with --save) up to --iters",
    )
    p.add_argument("--activation", choices=ACTIVATIONS,
                   help="hidden layers of an mlp (default: sigmoid)")  # fmt: skip
    p.add_argument("--gradient", choices=GRADIENT_MODES, default="backprop", help="method")
    p.add_argument("--seed", type=seed, default=0, help="seed of initial weights and batches")
    p.add_argument("--metrics-out", type=Path, metavar="PATH", help="write metrics JSON here")
    p.add_argument(
        "--plot", type=Path, metavar="PATH",
        help="write accuracy curves; the suffix picks the format (.png, .pdf, .svg, ...)",
    )  # fmt: skip
    p.add_argument(
        "--validation",
        type=fraction,
        metavar="FRACTION",
        help="hold out this fraction of the training set and evaluate on it every epoch; "
        "the test set is then evaluated once, at the end",
    )
    p.add_argument(
        "--patience",
        type=positive_int,
        metavar="N",
        help="early stopping (needs --validation): stop after N evaluations without a "
        "better validation score and keep the best evaluation's parameters",
    )
    p.add_argument("--save", type=Path, metavar="PATH", help="write a checkpoint (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--compile", choices=COMPILE_FLAGS, default="auto", help=COMPILE_HELP)
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-train``; returns 0 or exits with one line on stderr."""
    hint = "use a smaller --hidden-size or --batch-size, or free memory"
    return run_command(
        _train_parser(),
        argv,
        lambda args, run: _train(args, run, given_flags(_train_parser, argv)),
        memory_hint=hint,
    )


def _train(args: argparse.Namespace, run: CliRun, given: set[str]) -> None:
    with run.usage_errors(BackendError):
        outputs = {"--metrics-out": args.metrics_out, "--plot": args.plot, "--save": args.save}
        check_outputs(outputs, inputs={"--resume": args.resume},
                      may_replace=[("--save", "--resume")])  # fmt: skip
        plot_format = figure_format("--plot", args.plot)
        resumed = read_resume(args, given, _train_parser())
        fill_net_defaults(args, given)
        if args.net == "mlp":
            _check_memory(args.hidden_size)
        if args.patience is not None and args.validation is None and args.resume is None:
            raise UsageError("--patience counts evaluations without validation improvement: "
                             "give --validation too (e.g. --validation 0.2)")  # fmt: skip
        backend = get_backend(args.backend, args.device, args.dtype)
        _check_float16(backend)
        _check_compile(args, backend)
    with run.failures(DataError, TrainingDivergedError, CheckpointError):
        _run_training(args, backend, run, plot_format, resumed)


def _run_training(
    args: argparse.Namespace,
    backend: Backend,
    run: CliRun,
    plot_format: str | None,
    resumed: Resumed | None,
) -> None:
    data = load(args, run, args.dataset)
    x_train, x_test = net_inputs(args, data.x_train), net_inputs(args, data.x_test)
    run.stage = "while building the net"
    net, optimizer, history = _net_and_optimizer(args, backend, x_train.shape[1:], data, resumed)
    if history is not None:
        write(f"{run.prog}: resumed from step {len(history.loss)} of {args.iters} ({args.resume})")
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
        if not args.quiet and h.val_acc:
            write(f"train acc, val acc | {h.train_acc[-1]:.4f}, {h.val_acc[-1]:.4f}")
        elif not args.quiet:
            write(f"train acc, test acc | {h.train_acc[-1]:.4f}, {h.test_acc[-1]:.4f}")

    # with --save, Ctrl-C and SIGTERM end the run after a whole step, which is then saved
    with deferred_interrupts() if args.save is not None else nullcontext() as interrupts:
        history = train(
            net, x_train, data.t_train, x_test, data.t_test,
            iters=args.iters, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
            gradient=args.gradient, progress=not args.quiet, on_epoch=on_epoch,
            optimizer=optimizer, history=history, eval_interval=args.eval_interval,
            validation=args.validation, patience=args.patience, stop=interrupts,
            eval_sample=args.eval_sample, compile=COMPILE_FLAGS[args.compile],
        )  # fmt: skip
    if interrupts is not None and interrupts():
        _save_interrupted(args, run, net, optimizer, history, data, interrupts)
    run.stage = f"after all {args.iters} steps"
    final_val = None
    if args.validation is not None:  # the handed-over evaluation's scores
        h = history
        at = h.eval_steps.index(h.best_step) if h.best_step is not None else -1
        final_train, final_val, final_test = h.train_acc[at], h.val_acc[at], h.final_test_acc
    else:  # scores of the final parameters: the last evaluation's, if it followed the
        # last step, else computed now; the test set is scored whole, sampled or not
        at_end = bool(history.eval_steps) and history.eval_steps[-1] == args.iters - 1
        if at_end:
            final_train = history.train_acc[-1]
        else:
            rows = slice(None, args.eval_sample)
            final_train = net.accuracy(x_train[rows], data.t_train[rows],
                                       scale=input_scale(x_train))  # fmt: skip
        if at_end and args.eval_sample is None:
            final_test = history.test_acc[-1]
        else:
            final_test = net.accuracy(x_test, data.t_test, scale=input_scale(x_test))
    diverged = bool(getattr(history, "diverged", False))
    final_loss = history.loss[-1]
    sps = args.iters * args.batch_size / history.loop_seconds
    verdict = "final (DIVERGED: try a smaller --lr)" if diverged else "final"
    if history.stopped_step is not None:
        verdict += f" (stopped early at step {history.stopped_step + 1})"
    if history.best_step is not None:
        verdict += f", best evaluation after step {history.best_step + 1}"
    val = "" if final_val is None else f"val acc {final_val:.4f}, "
    print(
        f"{verdict}: train acc {final_train:.4f}, {val}test acc {final_test:.4f}, "
        f"loss {final_loss:.4f}, loop {history.loop_seconds:.2f} s ({sps:,.0f} samples/s)",
        flush=True,
    )
    config = _config(args)
    if args.save is not None:
        _save(args, run, net, optimizer, history, data)
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
            "final_val_acc": final_val,
            "final_test_acc": final_test,
            "final_loss": final_loss,
            "samples_per_second": sps,
            "diverged": diverged,
        }
        write_text(run, args.metrics_out, json.dumps(metrics, indent=1) + "\n")
    if args.plot is not None:
        from ..plots import plot_training_curves

        save_figure(run, plot_training_curves(history), args.plot, plot_format)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def _save(args, run, net, optimizer, history, data, **extra: Any) -> bool:
    """Write the ``--save`` checkpoint of the run so far (``len(history.loss)`` steps; with
    early stopping the net holds the best evaluation's state, and the history through it
    goes with it, so --resume goes on from there)."""
    if history.best_step is not None:
        history = history_through(history, history.best_step)
    meta = {
        "dataset": data.name,
        "data_fingerprint": data.fingerprint,
        "data_source": data.source,
        "config": _config(args),
        "step": len(history.loss),
        "seed": args.seed,
        "history": history.as_dict(),
        **extra,
    }
    state = optimizer.state_dict()
    return write_output(
        run, args.save, lambda path: save_checkpoint(path, net, optimizer_state=state, meta=meta)
    )


def _save_interrupted(args, run, net, optimizer, history, data, interrupts) -> None:
    """Save the last whole step of an interrupted run, then stop as the interrupt asked."""
    steps = len(history.loss)
    run.stage = f"after step {steps} of {args.iters}"
    if steps and _save(args, run, net, optimizer, history, data, interrupted=True):
        run.kept = lambda: (
            f"wrote {args.save} (continue with --resume {args.save} --iters {args.iters})"
        )
    interrupts.resume_raising()


def _net_and_optimizer(
    args: argparse.Namespace,
    backend: Backend,
    input_shape: tuple[int, ...],
    data: Any,
    resumed: Any,
):
    """The net, optimizer and history to train: new, or restored with --resume."""
    args.eval_interval = None
    if resumed is not None:
        ckpt, where = resumed.ckpt, f"--resume {args.resume}"
        if ckpt.meta.get("data_fingerprint") not in (None, data.fingerprint):
            raise UsageError(
                f"{where}: it was trained on other data "
                f"({ckpt.meta.get('dataset')}); give the same --dataset/--data-dir"
            )
        if ckpt.input_shape != input_shape:
            raise UsageError(
                f"{where}: its net takes inputs of shape {ckpt.input_shape}, but {data.name} "
                f"images are {input_shape}"
            )
        history = resumed.history
        if len(history.loss) >= args.iters:
            raise UsageError(
                f"{where}: it already ran {len(history.loss)} steps; give --iters above that"
            )
        net = ckpt.to_net(backend=backend)
        optimizer = _optimizer(args)
        try:
            optimizer.load_state_dict(ckpt.optimizer_state, net.params)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{where}: {exc}") from None
        # None: an epoch of the rows it trained on, as the saved run counted it
        args.eval_interval = ckpt.meta["config"].get("eval_interval")
        return net, optimizer, history
    return build_net(args, backend, input_shape), _optimizer(args), None


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
        raise UsageError(str(exc)) from None

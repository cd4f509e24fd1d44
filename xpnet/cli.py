"""Command lines: ``xpnet-train`` (scripts/train.py), ``xpnet-evaluate`` (scripts/evaluate.py)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from .backends import BackendError, get_backend

__all__ = ["evaluate_main", "train_main"]

DATASET_CHOICES = ("mnist", "mnist-sample", "fashion-mnist")


class _UsageError(Exception):
    """A bad flag value or output path, found before any work starts."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend (defaults from XPNET_BACKEND, XPNET_DEVICE, XPNET_DTYPE)")
    g.add_argument("--backend", help="numpy, array_api_strict, torch, cupy or jax")
    g.add_argument("--device", help="cpu, cuda, cuda:1, device1, ...")
    g.add_argument("--dtype", choices=("float32", "float64", "float16"))


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=DATASET_CHOICES, default="mnist")
    p.add_argument("--data-dir", type=Path, help="folder with the four IDX .gz files")


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet-train",
        description="Train the chapter's TwoLayerNet with mini-batch SGD on any backend.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_backend_flags(p)
    _add_data_flags(p)
    p.add_argument("--iters", type=_positive_int, default=10_000)
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--lr", type=_positive_float, default=0.1)
    p.add_argument("--hidden-size", type=_positive_int, default=50)
    p.add_argument("--activation", choices=("sigmoid", "relu"), default="sigmoid")
    p.add_argument("--gradient", choices=("backprop", "numerical"), default="backprop")
    p.add_argument("--seed", type=int, default=0, help="seed of initial weights and batches")
    p.add_argument("--metrics-out", type=Path, metavar="PATH", help="write metrics JSON here")
    p.add_argument("--plot", type=Path, metavar="PATH", help="write accuracy curves (PNG)")
    p.add_argument("--save", type=Path, metavar="PATH", help="write the weights (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return p


def _check_writable(flag: str, path: Path | None) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise _UsageError(f"{flag} {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise _UsageError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _UsageError(f"{flag} {path} is not writable")


def train_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-train``; returns the exit status."""
    parser = _train_parser()
    args = parser.parse_args(argv)
    try:
        for flag, path in (("--metrics-out", args.metrics_out), ("--plot", args.plot),
                           ("--save", args.save)):  # fmt: skip
            _check_writable(flag, path)
        if args.plot is not None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                raise _UsageError("--plot needs matplotlib: pip install 'xpnet[plot]'") from None
        backend = get_backend(args.backend, args.device, args.dtype)
        return _run_training(args, backend)
    except (_UsageError, BackendError) as exc:
        parser.exit(2, f"xpnet-train: error: {exc}\n")
    except Exception as exc:  # data, divergence: one line, no traceback
        from .data import DataError
        from .training import TrainingDivergedError

        if isinstance(exc, DataError | TrainingDivergedError):
            parser.exit(1, f"xpnet-train: error: {exc}\n")
        raise
    return 0


Split = tuple[np.ndarray, np.ndarray]


def _load(args: argparse.Namespace, prog: str) -> tuple[Split, Split, str]:
    """The data as uint8 pixels and labels, and the name of the set actually used."""
    from .data import SampleFallbackWarning, load_mnist

    used = args.dataset
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SampleFallbackWarning)
        train_set, test_set = load_mnist(
            normalize=False, flatten=True, dataset=args.dataset, data_dir=args.data_dir
        )
    for w in caught:
        if issubclass(w.category, SampleFallbackWarning):
            used = "mnist-sample"
        print(f"{prog}: warning: {w.message}", file=sys.stderr)
    return train_set, test_set, used


def _run_training(args: argparse.Namespace, backend: Any) -> int:
    from ._progress import write
    from .checkpoint import save_weights
    from .nets import TwoLayerNet
    from .training import train

    (x_train, t_train), (x_test, t_test), used = _load(args, "xpnet-train")
    net = TwoLayerNet(
        x_train.shape[1], args.hidden_size, 10,
        backend=backend, seed=args.seed, activation=args.activation,
    )  # fmt: skip
    if not args.quiet:
        write(
            f"xpnet-train: {used} ({len(x_train)} train / {len(x_test)} test), "
            f"backend {backend.name} on {backend.device_name}, {backend.dtype_name}"
        )

    def on_epoch(h: Any) -> None:
        if not args.quiet:
            write(f"train acc, test acc | {h.train_acc[-1]:.4f}, {h.test_acc[-1]:.4f}")

    history = train(
        net, x_train, t_train, x_test, t_test,
        iters=args.iters, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        gradient=args.gradient, progress=not args.quiet, on_epoch=on_epoch,
    )  # fmt: skip
    final_test = net.accuracy(x_test, t_test, scale=1.0 / 255.0)  # as train() scales uint8
    final_loss = history.loss[-1]
    sps = args.iters * args.batch_size / history.loop_seconds
    print(
        f"final: test acc {final_test:.4f}, train acc {history.train_acc[-1]:.4f} "
        f"(at step {history.eval_steps[-1]}), loss {final_loss:.4f}, "
        f"loop {history.loop_seconds:.2f} s ({sps:,.0f} samples/s)"
    )
    if args.save is not None:
        save_weights(net, args.save)
    if args.metrics_out is not None:
        metrics = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "dataset": used,
            "backend": backend.name,
            "device": backend.device_name,
            "dtype": backend.dtype_name,
            "train_acc": history.train_acc,
            "test_acc": history.test_acc,
            "eval_steps": history.eval_steps,
            "final_test_acc": final_test,
            "final_loss": final_loss,
            "loss": history.loss,
            "loop_seconds": history.loop_seconds,
            "samples_per_second": sps,
        }
        with atomic_write(args.metrics_out, "w") as fh:
            fh.write(json.dumps(metrics, indent=1) + "\n")
    if args.plot is not None:
        from .plots import plot_training_curves

        fig = plot_training_curves(history)
        fig.savefig(args.plot, dpi=100)
    return 0


def _evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet-evaluate",
        description="Test accuracy, per-class accuracy and confusion matrix of saved weights.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("weights", type=Path, help=".npz written by xpnet-train --save")
    _add_backend_flags(p)
    _add_data_flags(p)
    return p


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-evaluate``; returns the exit status."""
    from .checkpoint import CheckpointError, load_weights
    from .data import DataError

    parser = _evaluate_parser()
    args = parser.parse_args(argv)
    try:
        backend = get_backend(args.backend, args.device, args.dtype)
        net = load_weights(args.weights, backend=backend, output_size=10)
        _, (x_test, t_test), used = _load(args, "xpnet-evaluate")
        if net.sizes[0] != x_test.shape[1]:
            raise CheckpointError(
                f"{args.weights}: input size is {net.sizes[0]}, but {used} images have "
                f"{x_test.shape[1]} pixels"
            )
    except (BackendError, CheckpointError, DataError) as exc:
        parser.exit(2, f"xpnet-evaluate: error: {exc}\n")
    x = x_test.astype(np.float32) / 255.0
    pred = np.concatenate(
        [
            backend.to_numpy(backend.xp.argmax(net.predict(x[i : i + 10_000]), axis=-1))
            for i in range(0, len(x), 10_000)
        ]
    )
    print(format_report(pred, np.asarray(t_test, dtype=np.int64), dataset=used))
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
    parser = argparse.ArgumentParser(description=description)
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--out", default=default_out, help="PNG to write")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--show", action="store_true", help="also open a window")
    args = parser.parse_args(argv)
    try:
        from . import plots

        backend = get_backend(dtype="float64")
        fig, summary = draw(backend, args)
        fig.savefig(args.out, dpi=args.dpi)
        print(summary)
        print(f"wrote {args.out} ({backend.name} on {backend.device_name})")
        if args.show:
            plots.show(fig)
    except (BackendError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

"""``xpnet-evaluate`` (scripts/evaluate.py): accuracy, per-class accuracy and confusion matrix
of saved weights; errors and exits as every command (:mod:`xpnet.cli.framework`)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._threads import blas_threads
from ..backends import BackendError, get_backend
from ..checkpoint import CheckpointError, load_checkpoint
from ..data import DATASETS, DataError
from ..evaluation import EVAL_CHUNK
from ..scaling import input_scale
from .framework import (
    CliRun,
    CommandParser,
    UsageError,
    load,
    run_command,
)

__all__ = ["evaluate_main", "format_report"]


def _evaluate_parser() -> CommandParser:
    p = CommandParser(
        prog="xpnet-evaluate",
        description="Test accuracy, per-class accuracy and confusion matrix of saved weights.",
    )
    p.add_argument("weights", type=Path, help=".npz written by xpnet-train --save")
    p.add_run_flags(None)
    return p


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet-evaluate``; returns 0 or exits with one line on stderr."""
    hint = "free memory or use another --backend"
    return run_command(_evaluate_parser(), argv, _evaluate, memory_hint=hint)


def _evaluate(args: argparse.Namespace, run: CliRun) -> None:
    try:
        backend = get_backend(args.backend, args.device, args.dtype)
        ckpt = load_checkpoint(args.weights)
        net = ckpt.to_net(backend=backend)
    except (BackendError, CheckpointError) as exc:
        hint = ""
        if isinstance(exc, CheckpointError) and not args.weights.exists():
            hint = f" (write one with: xpnet-train --save {args.weights})"
        raise UsageError(f"{exc}{hint}") from None
    trained_on = ckpt.meta.get("dataset")
    if trained_on is not None and trained_on not in DATASETS:  # an edited or foreign file
        run.line("warning", f"{args.weights} names data set {json.dumps(trained_on)}, "
                 "which this version does not know; give --dataset")  # fmt: skip
        trained_on = None
    dataset = args.dataset or trained_on or "mnist"
    if args.dataset and trained_on and args.dataset != trained_on:
        run.line("warning", f"{args.weights} was trained on {trained_on}, "
                 f"evaluating on {args.dataset} as asked")  # fmt: skip
    with run.failures(DataError):
        data = load(args, run, dataset)
    fp = ckpt.meta.get("data_fingerprint")
    if data.name == trained_on and fp and fp != data.fingerprint:
        run.line("warning", f"this copy of {data.name} differs from the one "
                 f"{args.weights} was trained on")  # fmt: skip
    shape, pixels = net.input_shape, math.prod(data.x_test.shape[1:])
    if math.prod(shape) != pixels:
        raise UsageError(
            f"{args.weights}: input size is {math.prod(shape)}, but "
            f"{data.name} images have {pixels} pixels"
        )
    x_test = data.x_test.reshape(len(data.x_test), *shape)
    classes = net.output_size
    labels = np.asarray(data.t_test, dtype=np.int64)
    if labels.size and classes <= labels.max():
        raise UsageError(
            f"{args.weights}: its output layer has {classes} units, but {data.name} has "
            f"labels up to {labels.max()}; it was not trained on this data set"
        )
    run.stage = "while evaluating"
    scale = input_scale(x_test)  # raw pixels are scaled as train() scales them
    with blas_threads(backend=backend):  # a whole-set pass: threads for the machine's load
        pred = np.concatenate([
            backend.to_numpy(
                backend.xp.argmax(net.logits(x_test[i : i + EVAL_CHUNK], scale=scale), axis=-1)
            )
            for i in range(0, len(x_test), EVAL_CHUNK)
        ])  # fmt: skip
    print(format_report(pred, labels, dataset=data.name, classes=classes))


def format_report(pred: np.ndarray, labels: np.ndarray, *, dataset: str, classes: int = 10) -> str:
    """Test accuracy, per-class accuracy and the confusion matrix as text.

    ``classes``: the net's outputs, at least the largest label + 1 (a net may predict
    classes the test set does not hold; they get rows of 0 images).
    """
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

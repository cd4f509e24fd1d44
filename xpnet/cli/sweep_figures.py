"""Figures of a sweep: loss curves per config, validation curves when there is a
validation set, and a heatmap of the ranking accuracy (validation, else final test)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._json import jsonable
from ..plots import smooth_curve
from .framework import CliRun, save_figure
from .sweep_results import cell, varying

__all__ = ["plot_heatmap", "plot_loss_curves", "save_sweep_figures"]


def save_sweep_figures(
    run: CliRun,
    out: Path,
    records: list[Any],
    rows: list[dict[str, Any]],
    *,
    label: str | None,
    smooth: bool,
    title: str,
) -> list[Path]:
    """``out/curves.png`` (see :func:`plot_loss_curves`) and, over a two-parameter grid,
    ``out/heatmap.png``.

    Without matplotlib there are no figures; a warning line says so.
    """
    if importlib.util.find_spec("matplotlib") is None:
        run.line("warning", "no figures: plotting needs matplotlib: pip install 'xpnet[plot]'")
        return []
    paths = [out / "curves.png"]
    fig = plot_loss_curves(records, label=label, smooth=smooth, title=title)
    save_figure(run, fig, paths[0])
    if any(r.history.val_acc for r in records):
        paths.append(out / "validation.png")
        save_figure(run, plot_validation_curves(records, label=label, title=title), paths[-1])
    keys = varying(rows)
    if len(keys) == 2:
        paths.append(out / "heatmap.png")
        save_figure(run, plot_heatmap(rows, *keys), paths[-1])
    return paths


def _label(config: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={cell(config.get(k, '-'))}" for k in keys) or "config"


def plot_loss_curves(
    records: list[Any], *, label: str | None = None, smooth: bool = False, title: str = "sweep"
):
    """Training loss against step, one line per config (seed 0 of each), as the book's
    ch06 comparison figures; returns the matplotlib Figure."""
    fig, ax, lines = _first_seeds(records, label)
    for name, r in lines:
        loss = np.asarray(r.history.loss, dtype=np.float64)
        y = smooth_curve(loss) if smooth else loss
        note = " (diverged)" if r.diverged else ""
        if getattr(r, "stopped_at", None) is not None:  # successive halving cut it short
            note += f" (stopped at {r.stopped_at})"
        ax.plot(np.arange(y.size), y, label=name + note)
    ax.set_xlabel("iterations")
    ax.set_ylabel("loss")
    finite = [
        np.nanmax(np.where(np.isfinite(r.history.loss), r.history.loss, np.nan))
        for r in records
        if r.history.loss
    ]
    top = min(2.5, float(np.nanmax(finite))) if finite else 2.5
    ax.set_ylim(0, max(top, 0.5))
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def _first_seeds(records: list[Any], label: str | None) -> tuple[Any, Any, list[Any]]:
    """A new figure, its axes and ``(line label, record)`` of each config's first seed."""
    from matplotlib.figure import Figure

    keys = _label_keys(records, label)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    lines: dict[str, Any] = {}
    for r in records:
        lines.setdefault(_label(r.config, keys), r)
    return fig, fig.add_subplot(), list(lines.items())


def _label_keys(records: list[Any], label: str | None) -> list[str]:
    """The config keys that tell the lines apart (the seed aside)."""
    if label:
        return [label]
    configs = [r.config for r in records]
    differ = [len({json.dumps(jsonable(c.get(k))) for c in configs}) > 1 for k in configs[0]]
    return [k for k, d in zip(configs[0], differ, strict=True) if d and k != "seed"]


def plot_validation_curves(records: list[Any], *, label: str | None = None, title: str = "sweep"):
    """Validation accuracy against step, one line per config (seed 0 of each), the best
    evaluation marked (early stopping's); returns the matplotlib Figure."""
    fig, ax, lines = _first_seeds(records, label)
    for name, r in lines:
        h = r.history
        if not h.val_acc:
            continue
        (line,) = ax.plot(h.eval_steps[: len(h.val_acc)], h.val_acc, label=name)
        if h.best_step is not None:
            ax.plot([h.best_step], [h.val_acc[h.eval_steps.index(h.best_step)]], "o",
                    color=line.get_color())  # fmt: skip
    ax.set_xlabel("iterations")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def plot_heatmap(rows: list[dict[str, Any]], x_key: str, y_key: str):
    """The ranking accuracy (mean over seeds; validation when the sweep has it, else
    final test) over a two-parameter grid."""
    from matplotlib.figure import Figure

    metric = "val_acc_mean" if any("val_acc_mean" in r for r in rows) else "test_acc_mean"

    xs = sorted({json.dumps(r[x_key]) for r in rows}, key=_order)
    ys = sorted({json.dumps(r[y_key]) for r in rows}, key=_order)
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        grid[ys.index(json.dumps(r[y_key])), xs.index(json.dumps(r[x_key]))] = r.get(
            metric, np.nan
        )
    fig = Figure(figsize=(1.2 * len(xs) + 2.5, 0.8 * len(ys) + 2), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, origin="lower")
    ax.set_xticks(range(len(xs)), [cell(json.loads(v)) for v in xs])
    ax.set_yticks(range(len(ys)), [cell(json.loads(v)) for v in ys])
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(
                j,
                i,
                f"{v:.3f}",
                ha="center",
                va="center",
                color="white" if v < 0.6 else "black",
                fontsize="small",
            )
    what = "validation accuracy" if metric == "val_acc_mean" else "final test accuracy"
    fig.colorbar(im, ax=ax, label=what)
    return fig


def _order(v: str) -> tuple:
    x = json.loads(v)
    return (0, float(x), "") if isinstance(x, int | float) else (1, 0.0, v)

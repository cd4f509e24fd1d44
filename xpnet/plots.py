"""The chapter's figures: a tangent line, a gradient field, a descent path, training curves.

matplotlib is an optional extra (``pip install 'xpnet[plot]'``) and is imported only
inside these functions, never by ``import xpnet.plots``. Every function draws on a fresh
:class:`matplotlib.figure.Figure` with an Agg canvas -- no pyplot state, no display
needed -- or on the ``ax`` it is given, and returns the Figure so it can be restyled and
saved. :func:`show` hands a Figure to pyplot for a window.

The numbers are computed on a backend (any array-API library and device) and only the
finished arrays are brought to the host for drawing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as _device

from ._array import itemsize
from .backends import Backend, get_backend, to_numpy
from .numerical import central_difference, numerical_diff, resolve_step

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "function_1",
    "function_2",
    "plot_descent_path",
    "plot_gradient_field",
    "plot_tangent",
    "plot_training_curves",
    "show",
    "smooth_curve",
]

#: The one-line error raised when matplotlib is not installed.
MISSING_MATPLOTLIB = "plotting needs matplotlib: pip install 'xpnet[plot]'"

#: matplotlib backends that cannot open a window.
_NON_INTERACTIVE = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def function_1(x: Any) -> Any:
    """The chapter's ``0.01 * x**2 + 0.1 * x`` (elementwise; numbers or arrays)."""
    return 0.01 * x**2 + 0.1 * x


def function_2(x: Any) -> Any:
    """The chapter's ``x0**2 + x1**2``: a point of shape (2,) or a stack of shape (k, 2).

    Returns a 0-d array for one point and ``k`` values for a stack, so it serves both
    :func:`xpnet.numerical_gradient` and its ``batched=True`` form.
    """
    xp = array_namespace(x)
    return xp.sum(x**2, axis=-1)


# --- matplotlib, loaded on demand ------------------------------------------------------


def _require_matplotlib() -> None:
    # The top-level package first: a cached submodule would import even with it gone.
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(MISSING_MATPLOTLIB) from None


def _new_figure(**kwargs: Any) -> Figure:
    """A standalone Figure on an Agg canvas (no pyplot, no display)."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _host(values: Any) -> np.ndarray:
    """A float64 host copy of a list, a NumPy array or an array of any backend."""
    if isinstance(values, list | tuple | np.ndarray | np.generic | int | float):
        return np.asarray(values, dtype=np.float64)
    return np.asarray(to_numpy(values), dtype=np.float64)


def _figure_and_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(), ax
    fig = _new_figure()
    return fig, fig.add_subplot()


def show(fig: Figure) -> None:
    """Open a window for a Figure made by this module (blocks until it is closed).

    Needs an interactive matplotlib backend; without one (no display, ``MPLBACKEND=Agg``)
    it says so on stderr and returns, so a script's saved PNG is still its output.
    """
    _require_matplotlib()
    import matplotlib
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() in _NON_INTERACTIVE:
        print(
            f"xpnet: matplotlib backend {matplotlib.get_backend()!r} cannot open a window "
            "(no display?); figure not shown",
            file=sys.stderr,
        )
        return
    try:
        plt.figure(fig)  # matplotlib >= 3.11 adopts a standalone Figure
    except ValueError:  # pragma: no cover - older matplotlib: attach a manager by hand
        from matplotlib import _pylab_helpers

        number = max(plt.get_fignums(), default=0) + 1
        manager = plt._get_backend_mod().new_figure_manager_given_figure(number, fig)
        _pylab_helpers.Gcf._set_new_active_manager(manager)
    plt.show()


# --- figures ---------------------------------------------------------------------------


def plot_tangent(
    f: Callable[[Any], Any],
    x0: float,
    *,
    x: Any = None,
    backend: Backend | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot ``f`` and its tangent at ``x0`` (the chapter's gradient_1d.py).

    The slope is :func:`xpnet.numerical_diff` at ``x0``; the tangent is
    ``t -> d * t + (f(x0) - d * x0)``.

    Parameters
    ----------
    f : callable
        Elementwise function of an array of ``backend`` (e.g. :func:`function_1`).
    x0 : float
        Where the tangent touches.
    x : array_like, shape (n,), optional
        Abscissae on the host; default the chapter's ``np.arange(0.0, 20.0, 0.1)``.
    backend : Backend, optional
        Where ``f`` is evaluated; default ``xpnet.get_backend(dtype="float64")``, which
        honours ``XPNET_BACKEND`` / ``XPNET_DEVICE``.
    ax : matplotlib Axes, optional
        Draw here instead of on a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        Two lines, labelled ``"f(x)"`` and ``"tangent"``; axis labels "x" and "f(x)".
        For :func:`function_1` at 5 the slope is 0.1999999999990898.
    """
    fig, ax = _figure_and_axes(ax)
    backend = get_backend(dtype="float64") if backend is None else backend
    host_x = np.arange(0.0, 20.0, 0.1) if x is None else _host(x)
    xs = backend.asarray(host_x)
    at = backend.asarray(float(x0))
    d = numerical_diff(f, at)
    tangent = d * xs + (f(at) - d * at)

    ax.plot(host_x, backend.to_numpy(f(xs)), label="f(x)")
    ax.plot(host_x, backend.to_numpy(tangent), label="tangent")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    return fig


def _gradients_at(f: Callable[[Any], Any], points: Any, h: float) -> Any:
    """Central-difference gradients of ``f`` at each row of ``points`` (k, n).

    ``f`` maps a stack of points (m, n) to m values; each call of ``f`` sees a chunk of
    the ``2 * k * n`` perturbed points (:func:`xpnet.numerical.central_difference`).
    """
    xp = array_namespace(points)
    k, n = points.shape
    eye = xp.eye(n, dtype=points.dtype, device=_device(points))[:, None, :]  # (n, 1, n)

    def values(offsets: Any) -> Any:  # (m, 1, n) -> (m, k): f at every point + offset
        m = offsets.shape[0]
        out = xp.asarray(f(xp.reshape(points[None, ...] + offsets, (m * k, n))))
        return xp.reshape(xp.astype(out, points.dtype), (m, k))

    size = itemsize(points.dtype, xp)
    g = central_difference(values, eye, h, bytes_per_direction=4 * k * n * size)
    return xp.permute_dims(g, (1, 0))


def plot_gradient_field(
    f: Callable[[Any], Any] | None = None,
    *,
    x0: Any = None,
    x1: Any = None,
    backend: Backend | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Quiver plot of ``-grad f`` on a grid (the chapter's gradient_2d.py).

    All grid points' gradients come from one vectorized central difference on the
    backend (``h`` = 1e-4 in float64, as the chapter).

    Parameters
    ----------
    f : callable, optional
        Takes a stack of points of shape (k, 2) and returns ``k`` values, e.g.
        ``lambda s: xp.sum(s**2, axis=-1)``; default :func:`function_2`.
    x0, x1 : array_like, shape (m,), optional
        Grid coordinates on the host; default ``np.arange(-2, 2.5, 0.25)`` each.
    backend : Backend, optional
        Where the gradient is computed; default ``xpnet.get_backend(dtype="float64")``.
    ax : matplotlib Axes, optional
        Draw here instead of on a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        One Quiver (``ax.collections[0]``) with arrows ``(U, V) = -grad f`` at the
        meshgrid points (x0 varying fastest), x/y limits [-2, 2], labels "x0", "x1".
    """
    fig, ax = _figure_and_axes(ax)
    backend = get_backend(dtype="float64") if backend is None else backend
    f = function_2 if f is None else f
    g0 = np.arange(-2, 2.5, 0.25) if x0 is None else _host(x0)
    g1 = np.arange(-2, 2.5, 0.25) if x1 is None else _host(x1)
    X, Y = np.meshgrid(g0, g1)
    X, Y = X.ravel(), Y.ravel()

    points = backend.asarray(np.stack([X, Y], axis=1))
    grad = backend.to_numpy(_gradients_at(f, points, resolve_step(points)))

    ax.quiver(X, Y, -grad[:, 0], -grad[:, 1], angles="xy", color="#666666")
    ax.set_xlim([-2, 2])
    ax.set_ylim([-2, 2])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.grid()
    return fig


def plot_descent_path(history: Any, *, ax: Axes | None = None) -> Figure:
    """The points visited by gradient descent (the chapter's gradient_method.py).

    Parameters
    ----------
    history : array, shape (steps, 2), any backend
        The second result of :func:`xpnet.gradient_descent`.
    ax : matplotlib Axes, optional
        Draw here instead of on a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        Dashed blue axes lines ``'--b'`` along y=0 and x=0, then the points as ``'o'``
        markers (the last line); limits (-3.5, 3.5) x (-4.5, 4.5), labels "X0", "X1".
    """
    path = _host(history)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"history must have shape (steps, 2), got {path.shape}")
    fig, ax = _figure_and_axes(ax)
    ax.plot([-5, 5], [0, 0], "--b")
    ax.plot([0, 0], [-5, 5], "--b")
    ax.plot(path[:, 0], path[:, 1], "o")
    ax.set_xlim(-3.5, 3.5)
    ax.set_ylim(-4.5, 4.5)
    ax.set_xlabel("X0")
    ax.set_ylabel("X1")
    return fig


def _series(history: Any, name: str) -> list[float]:
    value = history.get(name) if isinstance(history, Mapping) else getattr(history, name, None)
    return [] if value is None else [float(v) for v in value]


def plot_training_curves(history: Any, *, ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Train and test accuracy per epoch, and the loss per step (train_neuralnet.py).

    Parameters
    ----------
    history : Mapping or object
        ``train_acc`` and ``test_acc`` (one float per evaluation) and optionally ``loss``
        (one float per training step), as keys or attributes -- a dict or
        :class:`xpnet.training.TrainHistory`. An absent or empty ``loss`` gives no loss
        panel; an absent or empty ``test_acc`` no test line.
    ax : matplotlib Axes or pair of Axes, optional
        One Axes: the accuracy plot only. Two: accuracy in the first, loss in the second.
        Default: a new Figure with one panel, or two side by side when there is a loss.

    Returns
    -------
    matplotlib.figure.Figure
        Accuracy axes: "train acc" (marker 'o') and "test acc" (linestyle '--', marker
        's') against epochs 0..n-1, ylim (0, 1), legend lower right. Loss axes: the loss
        against iteration 0..steps-1.
    """
    train_acc = _series(history, "train_acc")
    test_acc = _series(history, "test_acc")
    loss = _series(history, "loss")

    if ax is None:
        fig = _new_figure(figsize=(10.0, 4.0) if loss else (6.4, 4.8))
        axes = fig.subplots(1, 2) if loss else [fig.add_subplot()]
    else:
        axes = [ax] if hasattr(ax, "plot") else list(ax)  # one Axes, or a list/array
        fig = axes[0].get_figure()
    acc_ax = axes[0]

    acc_ax.plot(np.arange(len(train_acc)), train_acc, marker="o", label="train acc")
    if test_acc:
        acc_ax.plot(
            np.arange(len(test_acc)), test_acc, linestyle="--", marker="s", label="test acc"
        )
    acc_ax.set_xlabel("epochs")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1.0)
    acc_ax.legend(loc="lower right")

    if loss and len(axes) > 1:
        loss_ax = axes[1]
        loss_ax.plot(np.arange(len(loss)), loss, linewidth=0.8)
        loss_ax.set_xlabel("iteration")
        loss_ax.set_ylabel("loss")
    return fig


def smooth_curve(x: Any) -> np.ndarray:
    """The book's loss smoothing: an 11-point Kaiser window (beta 2), same length."""
    x = np.asarray(x, dtype=np.float64)
    window = 11
    if x.size < window:
        return x
    s = np.r_[x[window - 1 : 0 : -1], x, x[-1:-window:-1]]
    w = np.kaiser(window, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5 : len(y) - 5]

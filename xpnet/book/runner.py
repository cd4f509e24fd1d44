"""Run one of the book's scripts unmodified, with its ``common`` and ``dataset`` from xpnet.

``xpnet-book path/to/ch07/train_convnet.py`` (or ``python -m xpnet.book ...``) runs the
script as ``python train_convnet.py`` would from its folder: that folder is the working
directory and ``sys.path[0]``, ``__name__`` is ``"__main__"``, ``sys.argv`` holds the
script and its arguments. The book's module names are answered by xpnet
(:mod:`xpnet.book.finder`) even where the book's own ``common/`` and ``dataset/`` are
on ``sys.path``; the script's own modules (``simple_convnet.py``) are imported from its
folder as they are and compute on xpnet's layers.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np

from .._env import restored_environ
from .._threads import blas_threads
from ..backends import BACKENDS, Backend, BackendError, as_backend, get_backend
from . import _host
from .finder import installed

__all__ = ["BookScriptError", "main", "run_script"]

#: The book computes in NumPy float64 (its weights come from ``np.random.randn``).
DEFAULT_DTYPE = "float64"
FIGURES_BACKEND = "module://xpnet.book._figures"


class BookScriptError(RuntimeError):
    """A script that cannot be run (not found, not a file); the message says which."""


def script_backend(
    backend: Backend | str | None = None, device: str | None = None, dtype: str | None = None
) -> Backend:
    """The run's backend: a :class:`Backend` as given (in ``dtype`` if given), else the
    arguments, else ``XPNET_*``, else numpy in float64 (the book's own dtype)."""
    if isinstance(backend, Backend):
        return as_backend(backend, dtype)
    return get_backend(backend, device, dtype or os.environ.get("XPNET_DTYPE") or DEFAULT_DTYPE)


def run_script(
    path: str | os.PathLike[str],
    args: Sequence[str] = (),
    *,
    backend: Backend | str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    seed: int | None = None,
    save_figures: str | os.PathLike[str] | None = None,
) -> dict[str, object]:
    """Run the book's script at ``path`` with ``args``, in this process.

    Parameters
    ----------
    path : path-like
        A ``.py`` file of the book (``ch05/train_neuralnet.py``).
    args : sequence of str
        The script's own command-line arguments.
    backend, device, dtype
        Where xpnet computes (see :func:`xpnet.get_backend`); dtype defaults to
        ``XPNET_DTYPE``, else float64, the book's arithmetic.
    seed : int, optional
        ``np.random.seed(seed)`` before the script runs (the book's scripts draw weights,
        batches and dropout masks from NumPy's global generator).
    save_figures : path-like, optional
        Folder for the figures each ``plt.show()`` displays (``SCRIPT-N.png``); it is
        created if missing. Without it, and without a display, figures are closed unseen.

    Returns
    -------
    dict
        The script's global variables after it ran.

    Raises
    ------
    BookScriptError
        ``path`` is not a file.
    xpnet.BackendError
        The backend, device or dtype cannot be used.
    """
    script = Path(path)
    if not script.is_file():
        what = "is a folder, not a script" if script.is_dir() else "not found"
        raise BookScriptError(f"script {what}: {os.fspath(path)}")
    script = script.resolve()
    b = script_backend(backend, device, dtype)
    if save_figures is not None:
        Path(save_figures).mkdir(parents=True, exist_ok=True)
    if seed is not None:
        np.random.seed(seed)  # noqa: NPY002 (the generator the book's scripts draw from)
    with (
        blas_threads(),  # by the machine's load: the scripts' matmuls vary in size
        _environment(b),
        _host.use(b),
        _figures(save_figures, script.stem),
        _script_context(script, args),
        installed(),
    ):
        return runpy.run_path(str(script), run_name="__main__")


@contextmanager
def _environment(b: Backend) -> Iterator[None]:
    """``XPNET_BACKEND``/``DEVICE``/``DTYPE`` of the run, for xpnet code that reads them."""
    wanted = {"XPNET_BACKEND": b.name, "XPNET_DEVICE": b.device_name, "XPNET_DTYPE": b.dtype_name}
    with restored_environ((), wanted):
        yield


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@contextmanager
def _figures(save_dir: str | os.PathLike[str] | None, stem: str) -> Iterator[None]:
    """``plt.show()`` that does not block where no window can open (or figures are saved)."""
    if save_dir is None and (_has_display() or os.environ.get("MPLBACKEND")):
        yield  # the user's own matplotlib set-up, interactive windows included
        return
    from . import _figures as figs

    figs.configure(save_dir, stem)
    before = os.environ.get("MPLBACKEND")
    if "matplotlib" in sys.modules:
        import matplotlib

        matplotlib.use(FIGURES_BACKEND)
    else:
        os.environ["MPLBACKEND"] = FIGURES_BACKEND
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = before


@contextmanager
def _script_context(script: Path, args: Sequence[str]) -> Iterator[None]:
    """cwd, ``sys.path[0]`` and ``sys.argv`` as ``python script.py`` sets them; afterwards
    the modules imported from the script's folder (or folders it added to ``sys.path``)
    are forgotten, so the next script's ``two_layer_net`` is its own."""
    folder = script.parent
    cwd, path, argv = os.getcwd(), list(sys.path), list(sys.argv)
    modules = set(sys.modules)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    sys.argv = [str(script), *args]
    try:
        yield
    finally:
        added = {Path(p).resolve() for p in sys.path if p not in path} | {folder}
        os.chdir(cwd)
        sys.path[:] = path
        sys.argv = argv
        for name in set(sys.modules) - modules:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(d) for d in added):
                del sys.modules[name]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet-book",
        description="Run one of the book's scripts unmodified, with its common/ and "
        "dataset/ answered by xpnet, on the chosen backend.",
    )
    p.add_argument("--backend", choices=BACKENDS, help="default: XPNET_BACKEND, else numpy")
    p.add_argument("--device", help="default: XPNET_DEVICE, else the library's default")
    p.add_argument(
        "--dtype",
        choices=("float64", "float32", "float16"),
        help=f"default: XPNET_DTYPE, else {DEFAULT_DTYPE} (the book's arithmetic)",
    )
    p.add_argument("--seed", type=int, help="np.random.seed(SEED) before the script runs")
    p.add_argument("--save-figures", metavar="DIR", help="write what plt.show() shows to DIR")
    p.add_argument("script", help="the book's script, e.g. ch05/train_neuralnet.py")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    return p


def _in_script(tb: TracebackType, script: str) -> bool:
    return Path(tb.tb_frame.f_code.co_filename) == Path(script).resolve()


def main(argv: Sequence[str] | None = None) -> int:
    """``xpnet-book [options] SCRIPT [ARGS...]``; returns the exit status."""
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.seed is not None and not 0 <= ns.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32), got {ns.seed}")
    try:
        run_script(
            ns.script, ns.args, backend=ns.backend, device=ns.device, dtype=ns.dtype,
            seed=ns.seed, save_figures=ns.save_figures,
        )  # fmt: skip
    except (BookScriptError, BackendError) as e:
        print(f"xpnet-book: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # the script's own exit status
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print("xpnet-book: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the script's own error: its traceback, as python shows it
        tb = e.__traceback__
        while tb is not None and not _in_script(tb, ns.script):
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        return 1
    return 0

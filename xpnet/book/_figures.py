"""A matplotlib backend for the book's scripts: ``plt.show()`` returns at once.

Used as ``module://xpnet.book._figures`` by the runner when there is no display or
figures are to be saved: each ``show()`` writes the open figures to the folder given to
:func:`configure` (``NAME-1.png``, ``NAME-2.png``, ... in the order shown), if any, and
closes them, as closing the windows of the book's interactive run would.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib._pylab_helpers import Gcf
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas

__all__ = ["FigureCanvas", "configure", "saved", "show"]

_out: dict[str, object] = {"dir": None, "stem": "figure", "saved": []}


def configure(out_dir: str | Path | None, stem: str) -> None:
    """Save the figures of the next ``show()`` calls as ``out_dir/stem-N.png``."""
    _out.update(dir=None if out_dir is None else Path(out_dir), stem=stem, saved=[])


def saved() -> list[Path]:
    """The files written since :func:`configure`."""
    return list(_out["saved"])  # type: ignore[call-overload]


def show(*args: object, **kwargs: object) -> None:
    """Write (when a folder is configured) and close every open figure."""
    out_dir = _out["dir"]
    files: list[Path] = _out["saved"]  # type: ignore[assignment]
    for manager in Gcf.get_all_fig_managers():
        if out_dir is not None:
            path = Path(out_dir) / f"{_out['stem']}-{len(files) + 1}.png"
            manager.canvas.figure.savefig(path)
            files.append(path)
    Gcf.destroy_all()

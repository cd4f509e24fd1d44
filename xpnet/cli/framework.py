"""What every command shares: exit statuses, error lines, warnings, help, flags, outputs.

Every user error ends in one line on stderr and an exit status: 2 for a bad flag value or
output path (found before any work starts), 1 for what can only fail later (data, memory, a
full disk, a diverged run, an output not written), 130 for Ctrl-C, 143 for SIGTERM.
Library warnings become ``prog: warning: ...`` lines. Library parameter names in either
(``lr=100``) are written as the command's flags (``--lr 100``). Every output file is
written atomically: a reader never sees half of one.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NoReturn

from .._files import atomic_write
from .._progress import write
from ..backends import BACKENDS, DTYPES, is_out_of_memory
from ..data import DATASETS, DataSet, load_data
from .signals import exit_status, sigterm_interrupts
from .terminal import guarded_stdout, printing_warnings

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliRun",
    "CommandParser",
    "HelpFormatter",
    "UsageError",
    "byte_size",
    "check_output",
    "cli_errors",
    "describe",
    "figure_format",
    "finite_float",
    "fraction",
    "load",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "run_cli",
    "run_command",
    "save_figure",
    "seed",
    "write_output",
    "write_text",
]

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# Library arguments whose meaning a flag of another name carries.
_RENAMED = (
    (re.compile(r"download=False"), "--offline"),
    (re.compile(r"download=True"), "without --offline"),
    (re.compile(r"verify=False"), "--no-verify"),
)
# Plain words such as "backend" or "seed" stay words in a message; a name with an
# underscore or a digit, or one of these, is a parameter name wherever it appears.
_PARAMETER_WORDS = ("lr", "iters")


class UsageError(Exception):
    """A bad flag value or output path, found before any work starts."""


# ---------------------------------------------------------------------- errors and exits
class CliRun:
    """One command's run: how it reports, and what it has done so far.

    Attributes
    ----------
    prog : str
        The command's name, the prefix of every line.
    stage : str
        Where the work is, e.g. ``"after step 600 of 10000"``; empty before it starts.
    written : list of str
        Output files completed so far.
    kept : callable or None
        Says what is kept when the run stops early (instead of ``written``), e.g. how
        many configs a results file holds.
    memory_hint : str
        What to do when memory runs out.
    failed : list of str
        Outputs that could not be written; the command ends with a line naming them, exit 1.
    resources : contextlib.ExitStack
        Held until the command ends, however it ends (a folder's lock).
    """

    def __init__(self, prog: str, parser: argparse.ArgumentParser | None = None) -> None:
        self.prog = prog
        self.stage = ""
        self.written: list[str] = []
        self.kept: Callable[[], str] | None = None
        self.memory_hint = "use smaller sizes or free memory"
        self.failed: list[str] = []
        self.resources = ExitStack()
        names = sorted(_parameter_names(parser), key=len, reverse=True)
        self._names = (
            re.compile(rf"(?<![\w/.-])({'|'.join(names)})(?:(=)|(?![\w/.-]))") if names else None
        )

    def wording(self, message: str) -> str:
        """``message`` with the library's parameter names replaced by this command's flags."""
        for pattern, flag in _RENAMED:
            message = pattern.sub(flag, message)
        if self._names is None:
            return message
        return self._names.sub(
            lambda m: "--" + m[1].replace("_", "-") + (" " if m[2] else ""), message
        )

    def done(self) -> str:
        if self.kept is not None:
            return self.kept()
        wrote = "wrote " + ", ".join(self.written) if self.written else "nothing written"
        return "; ".join([*self.failed, wrote])

    def line(self, kind: str, message: str) -> None:
        """Print ``prog: kind: message`` on stderr, above a progress bar if one is running."""
        write(f"{self.prog}: {kind}: {message}", file=sys.stderr)

    def fail(self, message: str, status: int = EXIT_FAILURE) -> NoReturn:
        """Print ``prog: error: message`` (on one line, in flag wording) and exit."""
        self.line("error", self.wording(_one_line(message)))
        raise SystemExit(status)

    @contextmanager
    def usage_errors(self, *errors: type[BaseException]) -> Iterator[None]:
        """Turn ``errors`` raised inside into one line and exit 2 (a bad flag value)."""
        try:
            yield
        except errors as exc:
            self.fail(describe(exc), EXIT_USAGE)

    @contextmanager
    def failures(self, *errors: type[BaseException]) -> Iterator[None]:
        """Turn ``errors`` raised inside into one line and exit 1 (a failure during work)."""
        try:
            yield
        except errors as exc:
            self.fail(describe(exc))


def _parameter_names(parser: argparse.ArgumentParser | None) -> set[str]:
    """The library parameter names that are flags of ``parser``."""
    if parser is None:
        return set()
    dests = {a.dest for a in parser._actions if a.option_strings}
    return {d for d in dests if d in _PARAMETER_WORDS or re.search(r"[_\d]", d)}


def _one_line(message: str) -> str:
    lines = [text.strip() for text in message.splitlines() if text.strip()]
    out = lines[0] if lines else ""
    for text in lines[1:]:
        out += (" " if out.endswith(":") else "; ") + text
    return out


def describe(exc: BaseException) -> str:
    """An exception as the text of an error line: a file error names its file."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    body: Callable[[argparse.Namespace, CliRun], Any],
    *,
    memory_hint: str | None = None,
) -> int:
    """A command: ``body(args, run)`` under :func:`cli_errors`; its int status, else 0."""
    args = parser.parse_args(argv)
    with cli_errors(parser.prog, parser) as run:
        if memory_hint is not None:
            run.memory_hint = memory_hint
        status = body(args, run)
    return status if isinstance(status, int) else 0


@contextmanager
def cli_errors(prog: str, parser: argparse.ArgumentParser | None = None) -> Iterator[CliRun]:
    """Turn Ctrl-C, bad flags, running out of memory and OS errors into one line and a status.

    Ctrl-C: ``interrupted: stopped <stage>; nothing written`` (or what was), exit 130;
    SIGTERM the same, exit 143. Outputs that failed (:attr:`CliRun.failed`): exit 1.
    :class:`UsageError`: exit 2. Memory: the cause and :attr:`CliRun.memory_hint`, exit 1.
    ``OSError`` (a full disk, a vanished folder): the file and the system's reason, exit 1.
    Everything else passes through. Warnings are lines too (:func:`printing_warnings`).
    With ``parser``, messages name its flags.
    """
    run = CliRun(prog, parser)
    broken = "standard output closed early (Broken pipe), the rest of it dropped"
    try:
        with (
            run.resources,
            sigterm_interrupts(),
            printing_warnings(run),
            guarded_stdout(lambda: run.failed.append(broken)),
        ):
            yield run
        if run.failed:
            run.fail(run.done())
    except KeyboardInterrupt as exc:
        where = f" {run.stage}" if run.stage else ""
        print(file=sys.stderr)  # end a progress bar's line
        run.line("interrupted", f"stopped{where}; {run.done()}")
        raise SystemExit(exit_status(exc)) from None
    except UsageError as exc:
        run.fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        if is_out_of_memory(exc):
            where = f" {run.stage}" if run.stage else ""
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            run.fail(f"out of memory{where} ({detail}); {run.memory_hint}; {run.done()}")
        if isinstance(exc, OSError):
            run.fail(f"{describe(exc)}; {run.done()}")
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


# ------------------------------------------------------------------------- the parser
class HelpFormatter(argparse.HelpFormatter):
    """A flag's default shown once, after its help, and only where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or "default" in text
        ):
            return text
        if isinstance(default, list | tuple):
            default = " ".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})".lstrip()


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of a command.

    Checks of flags together (:meth:`add_check`) run as part of parsing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._checks: list[Callable[[argparse.Namespace], None]] = []

    def add_check(self, check: Callable[[argparse.Namespace], None]) -> None:
        """Run ``check(args)`` after parsing; a :class:`UsageError` it raises is a flag error."""
        self._checks.append(check)

    def parse_args(self, *args: Any, **kwargs: Any) -> argparse.Namespace:  # type: ignore[override]
        ns = super().parse_args(*args, **kwargs)
        for check in self._checks:
            try:
                check(ns)
            except UsageError as exc:
                self.error(str(exc))
        return ns

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def add_run_flags(self, dataset: str | None) -> None:
        """The backend and data flags of every command that trains or evaluates.

        ``dataset`` is the default ``--dataset``; None: the command decides.
        """
        _add_backend_flags(self)
        _add_data_flags(self, dataset)
        self.add_check(_check_data_flags)


def _flag_type(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str):
    """An argparse ``type``: ``convert(text)`` when ``accept`` takes it, else a usage error."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _flag_type(int, lambda v: v >= 1, "a positive integer")
#: numpy.random.default_rng takes non-negative seeds only
seed = _flag_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _flag_type(
    float, lambda v: math.isfinite(v) and v > 0, "a positive finite number"
)
non_negative_float = _flag_type(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
fraction = _flag_type(float, lambda v: 0 < v < 1, "a fraction between 0 and 1 (0.2 is a fifth)")
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def _bytes(text: str) -> int | None:
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    number = float(t[: len(t) - len(unit)])
    return int(number * _UNITS[unit]) if math.isfinite(number) else None


byte_size = _flag_type(_bytes, lambda v: v >= 1, "a number of bytes such as 512M or 8G")
finite_float = _flag_type(float, math.isfinite, "a finite number")


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend (defaults from XPNET_BACKEND, XPNET_DEVICE, XPNET_DTYPE)")
    g.add_argument("--backend", help=f"{', '.join(BACKENDS)} (default: numpy)")
    g.add_argument("--device", help="cpu, cuda, cuda:1, device1, ... (default: the library's)")
    g.add_argument("--dtype", choices=DTYPES, help="parameter dtype (default: float32)")


def _add_data_flags(p: argparse.ArgumentParser, default: str | None) -> None:
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


def _check_data_flags(args: argparse.Namespace) -> None:
    if args.dataset == "mnist-sample" and args.data_dir is not None:
        raise UsageError("--data-dir has no effect with --dataset mnist-sample (bundled data)")


def load(args: argparse.Namespace, run: CliRun, dataset: str) -> DataSet:
    """The data as uint8 pixels and labels; one line names what was used."""
    run.stage = "while loading the data"
    data = load_data(
        dataset, data_dir=args.data_dir, download=not args.offline, verify=not args.no_verify
    )
    write(f"{run.prog}: data: {data.describe()}")
    return data


# ---------------------------------------------------------------------------- outputs
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


def figure_format(flag: str, path: Path | None) -> str | None:
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


def write_output(run: CliRun, path: Path, writer: Callable[[Path], Any]) -> bool:
    """Write one output (atomically, by ``writer``); True if it was. A failure does not stop
    the others: it goes to :attr:`CliRun.failed` (one line at the end, exit 1)."""
    try:
        writer(path)
    except OSError as exc:
        run.failed.append(f"cannot write {path} ({exc.strerror or exc})")
        return False
    run.written.append(str(path))
    return True


def write_text(run: CliRun, path: Path, text: str) -> None:
    """:func:`write_output` of a text file, byte for byte (no newline translation)."""

    def dump(target: Path) -> None:
        with atomic_write(target) as fh:
            fh.write(text.encode())

    write_output(run, path, dump)


def save_figure(run: CliRun, fig: Any, path: Path, fmt: str | None = None, dpi: int = 100):
    """:func:`write_output` of a matplotlib figure in format ``fmt`` (from the suffix)."""

    def draw(target: Path) -> None:
        with atomic_write(target) as fh:
            fig.savefig(fh, format=fmt or path.suffix[1:].lower() or "png", dpi=dpi)

    write_output(run, path, draw)

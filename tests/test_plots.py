"""Figures of xpnet.plots and the gradient_* scripts, checked by their axes and data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _scripts import load_script

import xpnet
from xpnet import plots
from xpnet.testing import numerical_atol, tolerance

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("gradient_1d", "gradient_2d", "gradient_method")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRID = np.arange(-2, 2.5, 0.25)
# The chapter's numbers (float64, h = 1e-4).
SLOPE_AT_5 = 0.1999999999990898
RTOL64, _ = tolerance("float64")
#: For a quadratic the central difference has no truncation error, only rounding of f
#: (|f| <= 8 on the chapter's grid) divided by 2h.
GRAD_ATOL = 8 * numerical_atol("float64")


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def _standalone(fig) -> None:
    """Built on an Agg canvas, unknown to pyplot."""
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert fig.canvas.manager is None


def test_import_does_not_load_matplotlib():
    code = "import sys, xpnet.plots; print('matplotlib' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- plot_tangent ----------------------------------------------------------------------


def test_plot_tangent(backend):
    fig = plots.plot_tangent(plots.function_1, 5, backend=backend)
    _standalone(fig)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "x"
    assert ax.get_ylabel() == "f(x)"
    curve, tangent = ax.get_lines()
    x = np.arange(0.0, 20.0, 0.1)
    np.testing.assert_array_equal(curve.get_xdata(), x)
    np.testing.assert_allclose(curve.get_ydata(), 0.01 * x**2 + 0.1 * x, rtol=RTOL64)
    np.testing.assert_array_equal(tangent.get_xdata(), x)

    slope, intercept = np.polyfit(x, tangent.get_ydata(), 1)
    # not 0.2: the chapter's rounding shows (polyfit itself rounds at about 1e-15)
    assert slope == pytest.approx(SLOPE_AT_5, rel=1e-13)
    assert slope * 5 + intercept == pytest.approx(plots.function_1(5.0), rel=RTOL64)


def test_plot_tangent_slope_is_numerical_diff(backend):
    d = xpnet.numerical_diff(plots.function_1, backend.asarray(5.0))
    assert float(backend.to_numpy(d)) == SLOPE_AT_5


def test_plot_tangent_custom_grid_and_axes():
    fig0 = Figure()
    ax = fig0.add_subplot(2, 2, 4)
    fig = plots.plot_tangent(lambda x: x**2, 1.0, x=[0.0, 1.0, 2.0], ax=ax)
    assert fig is fig0
    _, tangent = ax.get_lines()
    np.testing.assert_allclose(
        tangent.get_ydata(), [-1.0, 1.0, 3.0], atol=numerical_atol("float64")
    )


# --- plot_gradient_field ---------------------------------------------------------------


def test_plot_gradient_field(backend):
    calls = []

    def f(stack):
        calls.append(stack.shape)
        assert xpnet.to_numpy(stack).dtype == np.float64
        xp = backend.xp
        return xp.sum(stack**2, axis=-1)

    fig = plots.plot_gradient_field(f, backend=backend)
    _standalone(fig)
    assert calls == [(324 * 4, 2)]  # every grid point in one vectorized call
    (ax,) = fig.axes
    (quiver,) = ax.collections
    assert isinstance(quiver, Quiver)
    X, Y = np.meshgrid(GRID, GRID)
    np.testing.assert_array_equal(quiver.X, X.ravel())
    np.testing.assert_array_equal(quiver.Y, Y.ravel())
    np.testing.assert_allclose(quiver.U, -2 * X.ravel(), atol=GRAD_ATOL)
    np.testing.assert_allclose(quiver.V, -2 * Y.ravel(), atol=GRAD_ATOL)
    assert quiver.angles == "xy"
    np.testing.assert_allclose(quiver.get_facecolor()[0], to_rgba("#666666"))
    assert ax.get_xlim() == (-2.0, 2.0)
    assert ax.get_ylim() == (-2.0, 2.0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "x1")
    fig.canvas.draw()
    assert all(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())


def test_plot_gradient_field_default_function_and_grid(backend):
    g = np.array([-1.0, 0.5])
    fig = plots.plot_gradient_field(x0=g, x1=g[::-1], backend=backend)
    (quiver,) = fig.axes[0].collections
    X, Y = np.meshgrid(g, g[::-1])
    np.testing.assert_allclose(quiver.U, -2 * X.ravel(), atol=GRAD_ATOL)
    np.testing.assert_allclose(quiver.V, -2 * Y.ravel(), atol=GRAD_ATOL)


def test_gradient_field_honours_xpnet_backend(monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict")
    monkeypatch.delenv("XPNET_DEVICE", raising=False)
    seen = []

    def f(stack):
        seen.append(type(stack).__module__)
        return plots.function_2(stack)

    plots.plot_gradient_field(f)
    assert seen and seen[0].startswith("array_api_strict")


# --- plot_descent_path -----------------------------------------------------------------


def test_plot_descent_path(backend):
    init = backend.asarray(np.array([-3.0, 4.0]))
    _, history = xpnet.gradient_descent(plots.function_2, init, lr=0.1, step_num=20)
    fig = plots.plot_descent_path(history)
    _standalone(fig)
    (ax,) = fig.axes
    h_axis, v_axis, points = ax.get_lines()
    for line in (h_axis, v_axis):
        assert line.get_linestyle() == "--"
        assert to_rgba(line.get_color()) == to_rgba("b")
    np.testing.assert_array_equal(h_axis.get_xydata(), [[-5, 0], [5, 0]])
    np.testing.assert_array_equal(v_axis.get_xydata(), [[0, -5], [0, 5]])
    assert points.get_marker() == "o"
    assert points.get_linestyle() == "None"
    np.testing.assert_array_equal(points.get_xydata(), backend.to_numpy(history))
    assert points.get_xydata().shape == (20, 2)
    np.testing.assert_allclose(points.get_xydata()[0], [-3.0, 4.0])
    assert ax.get_xlim() == (-3.5, 3.5)
    assert ax.get_ylim() == (-4.5, 4.5)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("X0", "X1")


def test_plot_descent_path_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"shape \(steps, 2\)"):
        plots.plot_descent_path(np.zeros((3, 3)))


# --- plot_training_curves --------------------------------------------------------------

TRAIN = [0.1, 0.8, 0.9, 0.93]
TEST = [0.09, 0.79, 0.88, 0.92]
LOSS = [2.3, 1.5, 0.9, 0.7, 0.5, 0.45]


def _check_accuracy_axes(ax) -> None:
    train, test = ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), np.arange(len(TRAIN)))
    np.testing.assert_array_equal(train.get_ydata(), TRAIN)
    np.testing.assert_array_equal(test.get_xdata(), np.arange(len(TEST)))
    np.testing.assert_array_equal(test.get_ydata(), TEST)
    assert (train.get_label(), train.get_marker()) == ("train acc", "o")
    assert (test.get_label(), test.get_marker(), test.get_linestyle()) == ("test acc", "s", "--")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epochs", "accuracy")
    assert ax.get_ylim() == (0.0, 1.0)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["train acc", "test acc"]
    # 'lower right': the drawn legend is nearer the axes' right and bottom edges.
    ax.get_figure().canvas.draw()
    box, frame = legend.get_window_extent(), ax.get_window_extent()
    assert frame.x1 - box.x1 < box.x0 - frame.x0 and box.y0 - frame.y0 < frame.y1 - box.y1


@pytest.mark.parametrize(
    "history",
    [
        {"train_acc": TRAIN, "test_acc": TEST, "loss": LOSS},
        SimpleNamespace(train_acc=TRAIN, test_acc=TEST, loss=LOSS),
    ],
    ids=["mapping", "attributes"],
)
def test_plot_training_curves(history):
    fig = plots.plot_training_curves(history)
    _standalone(fig)
    acc_ax, loss_ax = fig.axes
    _check_accuracy_axes(acc_ax)
    (loss,) = loss_ax.get_lines()
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(len(LOSS)))
    np.testing.assert_array_equal(loss.get_ydata(), LOSS)
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel()) == ("iteration", "loss")


@pytest.mark.parametrize(
    "history",
    [
        {"train_acc": TRAIN, "test_acc": TEST},
        SimpleNamespace(train_acc=TRAIN, test_acc=TEST, loss=[]),
    ],
    ids=["absent", "empty"],
)
def test_plot_training_curves_without_loss(history):
    fig = plots.plot_training_curves(history)
    (acc_ax,) = fig.axes
    _check_accuracy_axes(acc_ax)


def test_plot_training_curves_on_given_axes():
    host = Figure()
    left, right = host.add_subplot(2, 2, 3), host.add_subplot(2, 2, 4)
    history = {"train_acc": TRAIN, "test_acc": TEST, "loss": LOSS}
    assert plots.plot_training_curves(history, ax=(left, right)) is host
    _check_accuracy_axes(left)
    np.testing.assert_array_equal(right.get_lines()[0].get_ydata(), LOSS)


# --- matplotlib missing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: plots.plot_tangent(plots.function_1, 5.0),
        lambda: plots.plot_gradient_field(),
        lambda: plots.plot_descent_path(np.zeros((2, 2))),
        lambda: plots.plot_training_curves({"train_acc": [0.5], "test_acc": [0.5]}),
        lambda: plots.show(None),
    ],
    ids=["tangent", "gradient_field", "descent_path", "training_curves", "show"],
)
def test_missing_matplotlib(monkeypatch, call):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError) as info:
        call()
    assert str(info.value) == "plotting needs matplotlib: pip install 'xpnet[plot]'"


def test_script_without_matplotlib(monkeypatch, tmp_path, capsys):
    script = load_script("gradient_2d")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit) as info:
        script.main(["--out", str(tmp_path / "a.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "gradient_2d: error: plotting needs matplotlib: pip install 'xpnet[plot]'\n"
    assert not (tmp_path / "a.png").exists()


# --- show ------------------------------------------------------------------------------


def test_show_without_a_display_says_so(monkeypatch, capsys):
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    fig = plots.plot_descent_path(np.zeros((1, 2)))
    plots.show(fig)
    assert "figure not shown" in capsys.readouterr().err
    assert fig.canvas.manager is None


# --- scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_writes_png(name, tmp_path, capsys):
    out = tmp_path / "a.png"
    assert load_script(name).main(["--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_honours_xpnet_backend(name, tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict")
    monkeypatch.setenv("XPNET_DEVICE", "device1")
    out = tmp_path / "a.png"
    assert load_script(name).main(["--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_script_default_out_is_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_script("gradient_method").main([]) == 0
    assert (tmp_path / "gradient_method.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_bad_backend_exits_2(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XPNET_BACKEND", "tensorflow")
    with pytest.raises(SystemExit) as info:
        load_script(name).main(["--out", str(tmp_path / "a.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{name}: error: unknown backend 'tensorflow'")
    assert err.count("\n") == 1


def test_script_show_only_when_asked(tmp_path, monkeypatch):
    script = load_script("gradient_1d")
    shown = []
    monkeypatch.setattr(plots, "show", shown.append)
    assert script.main(["--out", str(tmp_path / "a.png")]) == 0
    assert shown == []
    assert script.main(["--out", str(tmp_path / "b.png"), "--show"]) == 0
    (fig,) = shown
    assert fig.axes[0].get_xlabel() == "x"


def _run_script(name, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("name", SCRIPTS)
@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("missing/x.png", "folder missing does not exist"),
        ("x.xyz", "matplotlib cannot write .xyz files; use one of "),
    ],
    ids=["no_directory", "unknown_format"],
)
def test_script_bad_out_is_one_line_and_exit_2(name, out, message, tmp_path):
    done = _run_script(name, "--out", out, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{name}: error: --out ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""  # nothing was computed
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file, no temp file left


def test_script_unwritable_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere
        pytest.skip("running as a user who can write to a read-only directory")
    done = _run_script("gradient_1d", "--out", str(locked / "a.png"), cwd=tmp_path)
    assert done.returncode == 2
    assert "is not writable" in done.stderr and done.stderr.count("\n") == 1


def test_script_ctrl_c_is_one_line_and_exit_130(tmp_path):
    """SIGINT while the figure is computed: 'interrupted' on stderr, exit 130."""
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from _scripts import load_script\n"
        "script = load_script('gradient_2d')\n"
        "def slow(*a, **k):\n"
        "    print('drawing', flush=True)\n"
        "    time.sleep(60)\n"
        "script.plots.plot_gradient_field = slow\n"
        f"sys.exit(script.main(['--out', {str(tmp_path / 'a.png')!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout.readline() == "drawing\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err and "nothing written" in err
    assert not (tmp_path / "a.png").exists()

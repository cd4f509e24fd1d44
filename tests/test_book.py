"""The book's scripts as clients: module names answered by xpnet, scripts run unmodified.

The scripts under ``tests/book_scripts`` are written in the book's style; the ``common``
and ``dataset`` packages beside them raise when imported, so every run proves that
xpnet's answers win over a book checkout's own folders.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet.book import BookScriptError, _host, main, run_script
from xpnet.book.finder import BOOK_MODULES, installed

SCRIPTS = Path(__file__).resolve().parent / "book_scripts"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.filterwarnings("ignore::xpnet.SampleFallbackWarning")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """The tests never download: full MNIST if cached, else the bundled sample."""
    monkeypatch.setenv("XPNET_OFFLINE", "1")
    for var in ("XPNET_BACKEND", "XPNET_DEVICE", "XPNET_DTYPE", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)


def _run(capsys, script, backend=None, **kwargs):
    """Run a fixture script in-process with seed 0; its printed ``key:value`` lines."""
    run_script(SCRIPTS / script, backend=backend, seed=0, **kwargs)
    out = capsys.readouterr().out
    lines = [line.split(":", 1) for line in out.splitlines() if ":" in line]
    return {k.strip(): v.strip() for k, v in lines}, out


_REFERENCE: dict[str, dict[str, str]] = {}


def _numpy_reference(capsys, script):
    """The numpy run of ``script`` (once per test run): other backends must print its numbers."""
    if script not in _REFERENCE:
        _REFERENCE[script] = _run(capsys, script, backend="numpy")[0]
    return _REFERENCE[script]


# --- module names -------------------------------------------------------------------


def test_the_books_names_are_xpnets_only_while_installed(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    with pytest.raises(ImportError, match="decoy 'common'"):
        importlib.import_module("common")  # the folder beside the scripts is a decoy
    sys.modules.pop("common", None)
    with installed():
        for name, target in BOOK_MODULES.items():
            assert importlib.import_module(name) is importlib.import_module(target)
        import common.layers  # noqa: F401 (the book's spelling)

        assert sys.modules["common.layers"].__spec__.name == "xpnet.book.common.layers"
    assert not any(name in sys.modules for name in BOOK_MODULES)
    with pytest.raises(ImportError, match="decoy 'dataset'"):
        importlib.import_module("dataset")
    sys.modules.pop("dataset", None)


# Every name the book's chapter 3-8 scripts and their local modules import or take from
# a star import (optimizer_compare_mnist.py uses the `np` of `from common.optimizer import *`).
BOOK_IMPORTS = {
    "common.functions": ["sigmoid", "softmax", "cross_entropy_error", "identity_function",
                         "step_function", "sigmoid_grad", "relu", "relu_grad",
                         "sum_squared_error", "softmax_loss", "np"],
    "common.gradient": ["numerical_gradient"],
    "common.layers": ["Affine", "Relu", "Sigmoid", "SoftmaxWithLoss", "Dropout",
                      "BatchNormalization", "Convolution", "Pooling", "im2col", "col2im",
                      "softmax", "cross_entropy_error", "np"],
    "common.optimizer": ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "np"],
    "common.trainer": ["Trainer"],
    "common.util": ["smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"],
    "common.multi_layer_net": ["MultiLayerNet"],
    "common.multi_layer_net_extend": ["MultiLayerNetExtend"],
    "dataset.mnist": ["load_mnist"],
}  # fmt: skip


@pytest.mark.parametrize("module", list(BOOK_IMPORTS))
def test_star_imports_give_the_books_names(module):
    with installed():
        names: dict = {}
        exec(f"from {module} import *", names)
    missing = [n for n in BOOK_IMPORTS[module] if n not in names]
    assert not missing
    if "np" in BOOK_IMPORTS[module]:
        assert names["np"] is np


# --- the layers' host boundary --------------------------------------------------------


def test_book_layers_compute_on_the_backend_and_answer_in_kind(backend):
    from xpnet.book.common import layers

    rng = np.random.default_rng(0)
    W, b, x = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal((4, 5))
    dout = rng.standard_normal((4, 3))
    with _host.use(backend):
        affine = layers.Affine(W, b)
        out = affine.forward(x)
        dx = affine.backward(dout)
        assert isinstance(out, np.ndarray) and isinstance(dx, np.ndarray)
        assert isinstance(affine.dW, np.ndarray) and affine.W is W  # the script's array
        np.testing.assert_allclose(out, x @ W + b, rtol=1e-12)
        np.testing.assert_allclose(affine.dW, x.T @ dout, rtol=1e-12)
        np.testing.assert_allclose(dx, dout @ W.T, rtol=1e-12)
        W -= 1.0  # an optimizer's in-place update reaches the next forward
        np.testing.assert_allclose(affine.forward(x), x @ W + b, rtol=1e-12)
        dev = affine.forward(backend.asarray(x))  # device in, device out
        assert type(dev) is type(backend.asarray(x))
        np.testing.assert_allclose(backend.to_numpy(dev), x @ W + b, rtol=1e-12)
        loss = layers.SoftmaxWithLoss()
        value = loss.forward(x[:, :3], np.array([[0], [1], [2], [1]]))  # labels (N, 1)
        assert isinstance(value, np.float64)
        grad = loss.backward()
        p = np.exp(x[:, :3]) / np.exp(x[:, :3]).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(grad, (p - np.eye(3)[[0, 1, 2, 1]]) / 4, rtol=1e-10)


def test_book_convolution_takes_a_number_as_bias(backend):
    """apply_filter.py convolves with ``Convolution(w, 0)``."""
    from xpnet.book.common import layers

    rng = np.random.default_rng(1)
    w, img = rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 5, 5))
    with _host.use(backend):
        out = layers.Convolution(w, 0).forward(img)
    expected = [
        [np.sum(img[0, 0, i : i + 3, j : j + 3] * w[0, 0]) for j in range(3)] for i in range(3)
    ]
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12)


def test_book_dropout_draws_from_numpys_global_generator():
    from xpnet.book.common.layers import Dropout

    np.random.seed(3)  # noqa: NPY002
    expected = np.random.rand(4, 6) > 0.3  # noqa: NPY002
    np.random.seed(3)  # noqa: NPY002
    x = np.ones((4, 6))
    np.testing.assert_array_equal(Dropout(0.3).forward(x), expected * 1.0)


# --- running scripts ------------------------------------------------------------------


def test_layers_script_with_its_local_module(capsys, backend):
    ref = _numpy_reference(capsys, "ch05/layer_gradient.py")
    got, _ = _run(capsys, "ch05/layer_gradient.py", backend=backend)
    for key in ("W1", "b1", "W2", "b2"):
        assert float(got[f"diff {key}"]) < 1e-8
    assert got["local module from"] == "ch05"
    assert float(got["loss after"]) < float(got["loss before"]) - 0.1
    for key in ("loss before", "loss after", "accuracy"):
        assert float(got[key]) == pytest.approx(float(ref[key]), rel=1e-9)


def _book_optimizers(steps=30):
    """The naive comparison written out with Python floats (the book's formulas)."""
    out = {}
    for name, lr in [("SGD", 0.95), ("Momentum", 0.1)]:
        x, y, vx, vy = -7.0, 2.0, 0.0, 0.0
        for _ in range(steps):
            gx, gy = x / 10.0, 2.0 * y
            if name == "SGD":
                x, y = x - lr * gx, y - lr * gy
            else:
                vx, vy = 0.9 * vx - lr * gx, 0.9 * vy - lr * gy
                x, y = x + vx, y + vy
        out[name] = (x, y)
    return out


def test_naive_optimizer_comparison_with_python_float_parameters(capsys, tmp_path, backend):
    got, _ = _run(capsys, "ch06/naive_optimizers.py", backend=backend, save_figures=tmp_path)
    for name, (x, y) in _book_optimizers().items():
        gx, gy = (float(v) for v in got[name].split(","))
        assert gx == pytest.approx(x, rel=1e-12) and gy == pytest.approx(y, rel=1e-12)
        assert got[f"{name} first"].startswith("-7.0,")  # the history kept its values
    for name in ("AdaGrad", "Adam", "RMSprop", "Nesterov"):
        gx, gy = (float(v) for v in got[name].split(","))
        assert abs(gx) < 7.0 and abs(gy) < 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["naive_optimizers-1.png"]


def test_regularization_trainer_and_functions(capsys, backend):
    ref = _numpy_reference(capsys, "ch06/regularization.py")
    got, _ = _run(capsys, "ch06/regularization.py", backend=backend)
    assert got["sigmoid"] == "[0.26894142 0.5        0.88079708]"
    assert got["relu"] == "[0. 0. 2.]" and got["step"] == "[0. 1.]"
    assert float(got["softmax sum"]) == pytest.approx(1.0)
    y = np.exp([0.3, 2.9, 4.0]) / np.exp([0.3, 2.9, 4.0]).sum()
    assert float(got["cross entropy"]) == pytest.approx(-np.log(y[2] + 1e-7), rel=1e-12)
    assert float(got["sum squared"]) == pytest.approx(0.5 * ((y - [0, 0, 1]) ** 2).sum())
    for key in ("W1", "b1", "W2", "b2", "gamma1", "beta1"):
        assert float(got[f"bn diff {key}"]) < 1e-6
    accs = [float(a) for a in got["trainer test acc"].strip("[]").split(",")]
    assert len(accs) == 3 and got["trainer losses"] == "18"
    assert got["decay scores"] == "(2, 10)"
    for key in ("trainer test acc", "decay scores"):
        assert got[key] == ref[key]
    for key in ("trainer last loss", "decay loss"):
        assert float(got[key]) == pytest.approx(float(ref[key]), rel=1e-9)


def test_conv_script_without_sys_path_line(capsys, backend):
    got, out = _run(capsys, "ch07/conv_gradient.py", backend=backend)
    diffs = dict(line.split() for line in out.splitlines()[:4])
    assert sorted(diffs) == ["W1", "W2", "b1", "b2"]
    assert all(float(v) < 1e-8 for v in diffs.values())
    assert got["im2col"] == "(36, 9)" and got["col2im"] == "(1, 1, 6, 6)"
    assert got["conv_output_size"] == "6.0"


def test_python_m_xpnet_book_in_a_subprocess(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    env.update(PYTHONPATH=str(ROOT), XPNET_OFFLINE="1", XPNET_BACKEND="numpy")
    cmd = [sys.executable, "-m", "xpnet.book", "--seed", "0", "--save-figures",
           str(tmp_path / "figs"), str(SCRIPTS / "ch06" / "naive_optimizers.py")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    x, y = _book_optimizers()["SGD"]
    assert f"SGD:{x!r},{y!r}" in done.stdout.splitlines()
    assert (tmp_path / "figs" / "naive_optimizers-1.png").stat().st_size > 1000


# --- the runner's contract ------------------------------------------------------------


def test_script_sees_what_python_script_py_gives_it(tmp_path, capsys):
    folder = tmp_path / "chX"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 'local'\n")
    (folder / "show_env.py").write_text(
        "import os, sys\nimport helper\nimport xpnet\n"
        "print('name:' + __name__)\nprint('cwd:' + os.getcwd())\n"
        "print('path0:' + sys.path[0])\nprint('argv:' + ' '.join(sys.argv[1:]))\n"
        "print('helper:' + helper.VALUE)\nprint('backend:' + xpnet.get_backend().name)\n"
        "print('dtype:' + xpnet.get_backend().dtype_name)\n"
    )
    cwd = os.getcwd()
    got, _ = _run(capsys, folder / "show_env.py", args=["--epochs", "3"])
    assert got["name"] == "__main__" and got["helper"] == "local"
    assert Path(got["cwd"]) == folder.resolve() == Path(got["path0"])
    assert got["argv"] == "--epochs 3"
    assert got["backend"] == "numpy" and got["dtype"] == "float64"
    assert os.getcwd() == cwd and "helper" not in sys.modules and str(folder) not in sys.path


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err
    assert err == f"xpnet-book: error: script not found: {tmp_path / 'nope.py'}\n"
    assert main([str(tmp_path)]) == 2
    assert "is a folder, not a script" in capsys.readouterr().err
    (tmp_path / "ok.py").write_text("print('ran')\n")
    assert main(["--backend", "torch", "--device", "tpu", str(tmp_path / "ok.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnet-book: error: unknown device 'tpu'") and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["--backend", "tensorflow", str(tmp_path / "ok.py")])
    assert e.value.code == 2
    with pytest.raises(BookScriptError):
        run_script(tmp_path / "missing.py")


def test_script_errors_and_exit_status_are_the_scripts(tmp_path, capsys):
    (tmp_path / "fails.py").write_text("x = 1\nraise ValueError('bad value in the script')\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    assert main([str(tmp_path / "fails.py")]) == 1
    err = capsys.readouterr().err
    assert "ValueError: bad value in the script" in err and "runner.py" not in err
    assert main([str(tmp_path / "exits.py")]) == 3
    assert main(["--dtype", "float32", str(tmp_path / "exits.py")]) == 3


def test_backend_dtype_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XPNET_DTYPE", "float32")
    (tmp_path / "dtype.py").write_text("import xpnet\nprint(xpnet.get_backend().dtype_name)\n")
    assert main([str(tmp_path / "dtype.py")]) == 0
    assert capsys.readouterr().out == "float32\n"
    assert os.environ["XPNET_DTYPE"] == "float32"


def test_importing_xpnet_book_installs_nothing():
    assert not any(isinstance(f, type(installed)) for f in sys.meta_path)
    assert "common" not in sys.modules or "xpnet" not in str(sys.modules["common"])
    assert xpnet.book.finder.BookFinder not in {type(f) for f in sys.meta_path}


def test_console_entry_point_is_the_runners_main():
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    line = next(ln for ln in lines if ln.startswith("xpnet-book"))
    module, func = line.split("=", 1)[1].strip().strip('"').split(":")
    assert getattr(importlib.import_module(module), func) is main

"""The README's Python examples run as written and print what their comments say.

Examples that need a GPU, a cluster or a full data set download (conv nets on Fashion-MNIST,
Dask, dask-cuda, Slurm) are exercised by their own tests, not from here.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

import xpnet

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    """Every fenced ``python`` block of the README, in order."""
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S)


def block(containing: str) -> str:
    """The one README example that contains ``containing``."""
    found = [b for b in python_blocks() if containing in b]
    assert len(found) == 1, f"{len(found)} README examples contain {containing!r}"
    return found[0]


def run(code: str, namespace: dict | None = None) -> list[str]:
    """Execute ``code`` (in ``namespace``); the lines it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {} if namespace is None else namespace)
    return out.getvalue().splitlines()


def numbers(text: str) -> np.ndarray:
    """The numbers of a printed scalar or NumPy array (``12.0``, ``[-0.03  0.04]``)."""
    return np.array([float(v) for v in text.strip().strip("[]").split()])


def test_python_blocks_are_found():
    assert len(python_blocks()) >= 8


def test_the_first_half_example_prints_what_its_comments_say(monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "numpy")  # printed as NumPy prints
    monkeypatch.delenv("XPNET_DEVICE", raising=False)
    code = block("xpnet.numerical_diff(f, 5)")
    lines = code.splitlines()
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    prints = sorted((n for n in calls if getattr(n.func, "id", "") == "print"),
                    key=lambda n: n.lineno)  # fmt: skip
    # what each print's last line says it prints, after "#" (None: no comment)
    said = [lines[node.end_lineno - 1].partition("#")[2].strip() or None for node in prints]
    printed = run(code)
    assert len(printed) == len(prints) == 6 and sum(s is not None for s in said) == 5
    for want, got in zip(said, printed, strict=True):
        if want is not None:
            np.testing.assert_allclose(numbers(got), numbers(want), rtol=1e-8, err_msg=want)
    np.testing.assert_allclose(numbers(printed[4]), [6.0, 8.0], rtol=1e-8)  # the batched one


def test_the_backend_example_round_trips(monkeypatch):
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    monkeypatch.delenv("XPNET_DEVICE", raising=False)  # it belongs to XPNET_BACKEND
    host = np.array([[1.5, -2.0]])
    ns = {"host_numpy_array": host}
    run(block("b.to_numpy(x)"), ns)
    assert ns["b"].name == "numpy" and ns["x"].dtype == np.float32
    np.testing.assert_array_equal(ns["host"], host.astype(np.float32))


def test_the_gradcheck_example_passes_or_raises():
    code = block("xpnet.gradcheck(f, grad, x)")
    x = np.array([0.5, -1.5, 2.0])
    ns = {"xpnet": xpnet, "f": lambda v: (v**3).sum(), "grad": lambda v: 3 * v**2, "x": x}
    printed = run(code, ns)
    assert ns["report"].passed and printed[0].startswith("gradcheck passed (")
    ns["grad"] = lambda v: 3 * v**2 + 1e-3  # off by 1e-3 everywhere: caught
    with pytest.raises(xpnet.GradcheckError, match=r"gradcheck FAILED \(full, 3 elements"):
        run(code, ns)


@pytest.mark.slow
def test_the_training_examples_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the sweep example writes best.npz
    monkeypatch.setenv("XPNET_OFFLINE", "1")
    [test_acc] = run(block("xpnet.TwoLayerNet(784, 50, 10, seed=0)"))
    assert float(test_acc) > 0.85
    ns: dict = {}
    [test_acc] = run(block("xpnet.MultiLayerNet(784, [100, 100, 100], 10"), ns)
    assert float(test_acc) > 0.9
    printed = run(block("records = xpnet.sweep(configs, x, t, xt, tt, iters=2000)"), ns)
    assert len(printed) == 3 and printed[1].startswith("[600, 600, 600,")
    val_acc, final_test_acc, shape = printed[2].split(" ", 2)
    assert float(val_acc) > 0.8 and float(final_test_acc) > 0.8 and shape == "(784, 50)"
    saved = xpnet.load_checkpoint(tmp_path / "best.npz")
    np.testing.assert_array_equal(saved.params["W1"], ns["best"].params["W1"])

"""scripts/parity.py: the table, the JSON and the exit status."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _scripts import load_script

from xpnet import parity


@pytest.fixture(scope="module")
def script():
    return load_script("parity")


def test_table_json_and_exit_zero(script, tmp_path, capsys):
    out = tmp_path / "p.json"
    argv = ["--backend", "array_api_strict", "--device", "device1", "--check", "softmax",
            "--check", "TwoLayerNet.gradient", "--out", str(out)]  # fmt: skip
    assert script.main(argv) == 0
    text = capsys.readouterr().out
    assert "parity: array_api_strict on device1 vs numpy float64" in text
    assert "4 passed, 0 failed" in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("softmax", "TwoLayer"))]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("softmax", "float64", "pass"),
        ("TwoLayerNet.gradient", "float64", "pass"),
        ("softmax", "float32", "pass"),
        ("TwoLayerNet.gradient", "float32", "pass"),
    ]
    data = json.loads(out.read_text())
    assert (data["backend"], data["device"], data["reference"]) == (
        "array_api_strict", "device1", "numpy")  # fmt: skip
    assert all(r["passed"] and r["max_abs"] <= r["atol"] + r["rtol"] for r in data["results"])


def test_a_failing_check_exits_one(script, monkeypatch, capsys):
    def wrong_on_torch(b):
        return {"y": np.array([1.0 if b.name == "numpy" else 1.1])}

    monkeypatch.setitem(parity.CHECKS, "wrong", parity.Check(wrong_on_torch))
    pytest.importorskip("torch")
    assert script.main(["--backend", "torch", "--check", "wrong", "--dtype", "float64"]) == 1
    text = capsys.readouterr().out
    assert "FAIL y: outside rtol=6.0e-08" in text and "0 passed, 1 failed" in text


def test_unknown_backend_is_one_line(script, capsys):
    with pytest.raises(SystemExit) as info:
        script.main(["--backend", "mxnet"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("parity: error: unknown backend 'mxnet'")


def test_ctrl_c_is_one_line_and_exit_130(script, monkeypatch, capsys, tmp_path):
    def first_then_interrupt(b, reference, checks=None):
        yield from list(real(b, reference, checks=["softmax"]))
        raise KeyboardInterrupt

    real = parity.run_parity
    monkeypatch.setattr(parity, "run_parity", first_then_interrupt)
    out = tmp_path / "p.json"
    with pytest.raises(SystemExit) as info:
        script.main(["--backend", "numpy", "--out", str(out)])
    assert info.value.code == 130
    err = capsys.readouterr().err.strip()
    assert err == "parity: interrupted: stopped after 1 checks; nothing written"
    assert not out.exists()


def test_unwritable_out_is_refused_before_any_check(script, monkeypatch, capsys):
    monkeypatch.setattr(parity, "run_parity", None)  # would fail if called
    with pytest.raises(SystemExit) as info:
        script.main(["--backend", "numpy", "--out", "/nonexistent/p.json"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "parity: error: --out /nonexistent/p.json: folder /nonexistent does not exist\n"
    )

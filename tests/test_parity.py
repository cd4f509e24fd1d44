"""Every backend agrees with a NumPy float64 reference: functions, gradients, training."""

from __future__ import annotations

import pytest

import xpnet
from xpnet import parity

pytestmark = pytest.mark.parity

CHECK_NAMES = list(parity.CHECKS)


@pytest.fixture(scope="module")
def reference():
    return xpnet.get_backend("numpy", dtype="float64")


def _run(name, backend, reference):
    if not parity.applicable(name, backend):
        pytest.skip(f"{name} does not apply to {backend.name} {backend.dtype_name}")
    result = parity.run_check(name, backend, reference)
    assert result.passed, result
    return result


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_parity_float64(backend, reference, name):
    result = _run(name, backend, reference)
    assert result.dtype == "float64"


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_parity_float32(backend32, reference, name):
    result = _run(name, backend32, reference)
    assert result.dtype == "float32"


def test_compare_catches_a_difference():
    import numpy as np

    ok = parity.compare("x", {"a": np.array([1.0, 2.0])}, {"a": np.array([1.0, 2.0])}, "float64")
    bad = parity.compare(
        "x", {"a": np.array([1.0, 2.001])}, {"a": np.array([1.0, 2.0])}, "float64"
    )
    assert ok.passed and ok.max_abs == 0.0
    assert not bad.passed and bad.max_abs == pytest.approx(0.001)
    assert bad.max_rel == pytest.approx(0.0005)


def test_an_argmax_tie_in_test_accuracy_is_not_a_failure(monkeypatch, reference):
    """Accuracies one test sample apart pass; the other values keep their tolerance."""
    import numpy as np

    def fake(b):
        flip = 0.0 if b.name == "numpy" and b.dtype_name == "float64" else 1 / 200
        return {"loss": np.array([1.0]), "test_acc": np.array([0.9 + flip])}

    monkeypatch.setitem(parity.CHECKS, "fake", parity.Check(fake, training=True))
    backend = xpnet.get_backend("numpy", dtype="float32")
    assert parity.run_check("fake", backend, reference).passed

    def far(b):
        return {
            "loss": np.array([1.0]),
            "test_acc": np.array([0.9 if b.dtype_name == "float64" else 0.8]),
        }  # noqa: E501

    monkeypatch.setitem(parity.CHECKS, "fake", parity.Check(far, training=True))
    result = parity.run_check("fake", backend, reference)
    assert not result.passed and "test_acc differs" in result.detail

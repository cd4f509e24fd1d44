"""The backend layer: selection, env parsing, asarray/to_numpy, and its one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import xpnet
from xpnet import BackendError, get_backend


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("XPNET_BACKEND", "XPNET_DEVICE", "XPNET_DTYPE", "XPNET_TF32"):
        monkeypatch.delenv(var, raising=False)


def test_default_is_numpy_float32():
    b = get_backend()
    assert (b.name, b.device_name, b.dtype_name, b.tf32) == ("numpy", "cpu", "float32", False)


def test_environment_chooses_backend_device_dtype(monkeypatch):
    pytest.importorskip("array_api_strict")
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict")
    monkeypatch.setenv("XPNET_DEVICE", "device1")
    monkeypatch.setenv("XPNET_DTYPE", "float64")
    b = get_backend()
    assert (b.name, b.device_name, b.dtype_name) == ("array_api_strict", "device1", "float64")
    # An explicit argument beats the environment; XPNET_DEVICE goes with XPNET_BACKEND only.
    assert get_backend("numpy", "cpu", "float32").name == "numpy"
    assert get_backend("numpy").device_name == "cpu"
    assert get_backend("array_api_strict").device_name == "device1"


def test_backend_is_immutable():
    b = get_backend("numpy")
    with pytest.raises(AttributeError):
        b.name = "torch"


def test_asarray_dtype_policy_and_round_trip(backend32):
    b = backend32
    x = b.asarray(np.array([[1.5, 2.5]], dtype=np.float64))
    assert x.dtype == b.xp.float32
    assert xpnet.backends.dtype_name(x) == "float32"
    from array_api_compat import device

    assert device(x) == b.device
    labels = b.asarray(np.array([1, 2, 3], dtype=np.int64))
    assert labels.dtype == b.xp.int64  # integers stay integers
    assert b.asarray(np.array([1, 2]), dtype="float32").dtype == b.xp.float32
    back = b.to_numpy(x)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, np.array([[1.5, 2.5]], dtype=np.float32))
    b.synchronize()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "tensorflow"}, "unknown backend 'tensorflow'; choose one of: numpy, "),
        ({"name": "numpy", "device": "cuda"}, "unknown device 'cuda' for backend 'numpy'"),
        ({"name": "numpy", "dtype": "float8"}, "unknown dtype 'float8'"),
        (
            {"name": "array_api_strict", "device": "gpu7"},
            "unknown device 'gpu7' for backend 'array_api_strict'; valid: 'CPU_DEVICE'",
        ),
        (
            {"name": "array_api_strict", "device": "no_float64", "dtype": "float64"},
            "device 'no_float64' of backend 'array_api_strict' has no float64",
        ),
        ({"name": "torch", "device": "tpu"}, "unknown device 'tpu' for backend 'torch'"),
    ],
)
def test_bad_settings_give_one_line_errors(kwargs, message):
    if kwargs["name"] in ("array_api_strict", "torch"):
        pytest.importorskip(kwargs["name"])
    with pytest.raises(BackendError) as info:
        get_backend(**kwargs)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    exc = info.value  # no chained backend traceback under the one line
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_unknown_backend_from_environment(monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "mxnet")
    with pytest.raises(BackendError, match="XPNET_BACKEND"):
        get_backend()


def test_missing_library_names_the_extra(monkeypatch):
    # Make the import fail the way it does on a machine without the package.
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(BackendError, match=r"backend 'jax' is not installed.*xpnet\[jax\]"):
        get_backend("jax")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(BackendError, match=r"xpnet\[cuda12\]' or 'xpnet\[cuda13\]"):
        get_backend("cupy")


def test_gpu_without_device_is_reported_by_the_probe():
    """torch imports fine on a CPU-only machine; only the allocating probe can tell."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the probe succeeds")
    with pytest.raises(BackendError, match=r"backend 'torch' has no usable GPU"):
        get_backend("torch", "cuda")


def test_probe_failure_is_one_line(monkeypatch):
    from xpnet import backends

    def boom():
        raise RuntimeError("CUDA driver version is insufficient\nlong backend traceback")

    with pytest.raises(BackendError) as info:
        backends._probe_gpu("cupy", boom)
    assert str(info.value).startswith("backend 'cupy' has no usable GPU (CUDA driver version")
    assert "\n" not in str(info.value)


def test_torch_matmul_is_full_float32_by_default():
    torch = pytest.importorskip("torch")
    get_backend("torch", "cpu")
    assert torch.backends.cuda.matmul.allow_tf32 is False
    get_backend("torch", "cpu", tf32=True)
    assert torch.backends.cuda.matmul.allow_tf32 is True
    get_backend("torch", "cpu")
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_import_is_light():
    """``import xpnet`` loads no GPU or plotting library and stays quick."""
    code = (
        "import sys, time; import numpy; t = time.perf_counter(); import xpnet; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('cupy', 'torch', 'jax', 'matplotlib', 'array_api_strict') "
        "if m in sys.modules]; print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, heavy = out.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    assert float(seconds) < 0.3

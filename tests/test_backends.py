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
            "unknown device 'gpu7' for backend 'array_api_strict'; valid: 'cpu', 'CPU_DEVICE', "
            "'device1'",
        ),
        (
            {"name": "array_api_strict", "device": "no_float64", "dtype": "float64"},
            "device 'no_float64' of backend 'array_api_strict' has no float64",
        ),
        (
            {"name": "torch", "device": "tpu"},
            "unknown device 'tpu' for backend 'torch'; valid: 'cpu', 'cuda', 'cuda:N'",
        ),
        (
            {"name": "cupy", "device": "cpu"},
            "unknown device 'cpu' for backend 'cupy'; valid: 'cuda', 'cuda:0'",
        ),
        (
            {"name": "cupy", "device": "cuda:1"},
            "select GPU 1 with CUDA_VISIBLE_DEVICES=1 and use device 'cuda' (or 'cuda:0')",
        ),
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
    with pytest.raises(BackendError, match=r"xpnet\[cuda12\]' or pip install 'xpnet\[cuda13\]"):
        get_backend("cupy")


def test_cpu_only_torch_build_says_so():
    """A CPU-only torch wheel is told to install a CUDA build, not to check the driver."""
    torch = pytest.importorskip("torch")
    if torch.backends.cuda.is_built():
        pytest.skip("this torch build has CUDA")
    with pytest.raises(BackendError, match=r"^this torch build has no CUDA support \(pip"):
        get_backend("torch", "cuda")


@pytest.fixture
def fake_cuda_torch(monkeypatch):
    """torch that claims a CUDA build with two GPUs; allocating on them still fails."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)

    def ones(*args, **kwargs):
        raise RuntimeError("CUDA driver version is insufficient\nlong backend traceback")

    monkeypatch.setattr(torch, "ones", ones)
    return torch


def test_gpu_probe_failure_is_one_line(fake_cuda_torch):
    """The import works on a machine without a usable GPU; only allocating tells."""
    with pytest.raises(BackendError) as info:
        get_backend("torch", "cuda:1")
    assert str(info.value) == (
        "backend 'torch' has no usable GPU (CUDA driver version is insufficient); "
        "check nvidia-smi and the CUDA driver, or use XPNET_BACKEND=numpy"
    )


def test_torch_gpu_beyond_the_device_count_is_one_line(fake_cuda_torch):
    with pytest.raises(BackendError) as info:
        get_backend("torch", "cuda:5")
    assert str(info.value) == (
        "backend 'torch' sees 2 GPU(s), so there is no 'cuda:5'; valid: 'cpu', 'cuda', "
        "'cuda:0', 'cuda:1' (argument or XPNET_DEVICE)"
    )


@pytest.mark.parametrize(
    ("name", "device", "canonical"),
    [
        ("cupy", None, "cuda:0"),
        ("cupy", "cuda", "cuda:0"),
        ("cupy", " CUDA:0 ", "cuda:0"),
        ("cupy", "gpu", "cuda:0"),
        ("torch", None, "cpu"),
        ("torch", "cuda", "cuda:0"),
        ("torch", "cuda:3", "cuda:3"),
        ("jax", "gpu:1", "cuda:1"),
        ("numpy", "CPU", "cpu"),
        ("array_api_strict", "cpu", "CPU_DEVICE"),
        ("array-api-strict", "device1", "device1"),
    ],
)
def test_device_names_have_one_spelling(name, device, canonical):
    assert xpnet.backends.canonical_device(name, device) == canonical


@pytest.mark.parametrize("device", ["cuda:1", "gpu:2", "cuda:10"])
def test_cupy_on_a_second_gpu_is_refused_without_importing_cupy(device, monkeypatch):
    # array-api-compat's CuPy creation functions allocate on the current device, not on
    # device=; the refusal says how to pick the GPU instead.
    monkeypatch.setitem(sys.modules, "cupy", None)
    n = device.partition(":")[2]
    with pytest.raises(BackendError) as info:
        get_backend("cupy", device)
    assert str(info.value) == (
        f"backend 'cupy' runs on one GPU, the current one: select GPU {n} with "
        f"CUDA_VISIBLE_DEVICES={n} and use device 'cuda' (or 'cuda:0')"
    )


def test_precision_flags_change_only_when_asked(monkeypatch):
    torch = pytest.importorskip("torch")
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        _check_precision_flags(matmul, monkeypatch)
    finally:  # process-wide switches: leave them as the test run had them
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _check_precision_flags(matmul, monkeypatch):
    matmul.allow_tf32 = True
    b = get_backend("torch", "cpu")
    assert (b.tf32, matmul.allow_tf32) == (False, True)  # left as the process had it
    b = get_backend("torch", "cpu", tf32=False)
    assert (b.tf32, matmul.allow_tf32) == (False, False)
    monkeypatch.setenv("XPNET_TF32", "1")
    b = get_backend("torch", "cpu")
    assert (b.tf32, matmul.allow_tf32) == (True, True)
    monkeypatch.setenv("XPNET_TF32", "maybe")
    with pytest.raises(BackendError, match=r"^XPNET_TF32='maybe' is not a switch; use 1 or 0$"):
        get_backend("torch", "cpu")


HEAVY = ("cupy", "torch", "jax", "matplotlib", "array_api_strict", "threadpoolctl")


def _heavy_modules_after(code):
    """The libraries of :data:`HEAVY` a fresh interpreter has imported after ``code``."""
    probe = f"import sys; {code}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_is_light():
    """``import xpnet`` loads no GPU, plotting or thread-control library."""
    assert _heavy_modules_after("import xpnet") == "[]"


# --- capabilities: what callers ask instead of comparing names -------------------------


def test_mutable_arrays_says_whether_in_place_updates_work(backend):
    x = backend.asarray(np.zeros(3))
    try:
        x[1] = 2.0
    except (TypeError, ValueError):  # JAX: immutable
        updated = False
    else:
        updated = bool(backend.to_numpy(x)[1] == 2.0)
    assert backend.mutable_arrays is updated


def test_slow_float16_is_set_for_the_numpy_based_libraries():
    slow = {name for name in xpnet.BACKENDS if _spec_of(name).slow_float16}
    assert slow == {"numpy", "array_api_strict"}
    assert get_backend("numpy").slow_float16 is True
    assert {n for n in xpnet.BACKENDS if not _spec_of(n).mutable_arrays} == {"jax"}


def _spec_of(name):
    from xpnet.backends._registry import spec_for

    return spec_for(name)


def test_is_out_of_memory_knows_host_and_torch_errors():
    from xpnet.backends import is_out_of_memory

    assert is_out_of_memory(MemoryError("Unable to allocate 58.4 GiB"))
    assert not is_out_of_memory(ValueError("out of memory"))  # a word is not a type
    assert not is_out_of_memory(RuntimeError("CUDA out of memory"))
    torch = pytest.importorskip("torch")
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))


def test_is_out_of_memory_knows_cupy_and_jax_errors_from_loaded_modules(monkeypatch):
    import types

    from xpnet.backends import is_out_of_memory

    class CUDARuntimeError(RuntimeError):
        pass

    class XlaRuntimeError(RuntimeError):
        pass

    runtime = types.SimpleNamespace(CUDARuntimeError=CUDARuntimeError)
    jax = types.SimpleNamespace(errors=types.SimpleNamespace(JaxRuntimeError=XlaRuntimeError))
    cublas_oom = CUDARuntimeError("cudaErrorMemoryAllocation: out of memory")
    xla_oom = XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4 GiB")
    assert not is_out_of_memory(cublas_oom) and not is_out_of_memory(xla_oom)
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.api.runtime", runtime)
    monkeypatch.setitem(sys.modules, "jax", jax)
    assert is_out_of_memory(cublas_oom) and is_out_of_memory(xla_oom)
    assert not is_out_of_memory(CUDARuntimeError("cudaErrorInvalidValue: invalid argument"))
    assert not is_out_of_memory(XlaRuntimeError("INVALID_ARGUMENT: shapes differ"))


def test_is_out_of_memory_imports_no_library():
    code = (
        "from xpnet.backends import is_out_of_memory; "
        "assert not is_out_of_memory(RuntimeError('x'))"
    )
    assert _heavy_modules_after(code) == "[]"


@pytest.mark.parametrize(
    ("raw", "on"),
    [("1", True), (" TRUE ", True), ("yes", True), ("on", True), ("0", False), ("off", False),
     ("No", False), ("false", False), ("", None)],
)  # fmt: skip
def test_every_switch_reads_the_same_spellings(monkeypatch, raw, on):
    from xpnet.data._download import offline

    monkeypatch.setenv("XPNET_TF32", raw)
    monkeypatch.setenv("XPNET_OFFLINE", raw)
    assert get_backend().tf32 is bool(on)
    assert offline() is bool(on)


def test_a_misspelt_switch_is_the_same_error_everywhere(monkeypatch, tmp_path):
    from xpnet import DataError, load_data

    monkeypatch.setenv("XPNET_TF32", "ture")
    monkeypatch.setenv("XPNET_OFFLINE", "ture")
    with pytest.raises(BackendError, match=r"^XPNET_TF32='ture' is not a switch; use 1 or 0$"):
        get_backend()
    with pytest.raises(DataError, match=r"^XPNET_OFFLINE='ture' is not a switch; use 1 or 0$"):
        load_data(data_dir=tmp_path)


@pytest.fixture
def host_transfers(monkeypatch):
    """Count device-to-host copies made through :func:`xpnet.to_numpy`.

    Patched where :class:`~xpnet.Backend` and ``to_numpy`` itself look the name up (the
    module that defines them): patching the re-export in ``xpnet.backends`` would count
    nothing and let every assertion below pass.
    """
    calls = []
    real = xpnet.to_numpy
    lookup = xpnet.Backend.asarray.__globals__
    assert lookup is real.__globals__ and lookup["to_numpy"] is real

    def counting(x):
        calls.append(type(x).__name__)
        return real(x)

    monkeypatch.setitem(lookup, "to_numpy", counting)
    return calls


def test_asarray_keeps_arrays_already_in_place(backend32, host_transfers):
    b = backend32
    x = b.asarray(np.array([[0.5, -1.0], [2.0, 3.0]]))
    assert b.asarray(x) is x
    assert b.asarray(x, dtype="float32") is x
    labels = b.asarray(np.array([3, 1, 4]))
    assert b.asarray(labels) is labels
    # Only the dtype differs: cast where the data is.
    as_float = b.asarray(labels, dtype=b.float_dtype)
    assert as_float.dtype == b.float_dtype
    from array_api_compat import device

    assert device(as_float) == b.device
    assert host_transfers == []
    np.testing.assert_array_equal(b.to_numpy(as_float), np.array([3.0, 1.0, 4.0], np.float32))


def test_asarray_never_sends_a_device_array_through_the_host(host_transfers):
    """array-api-strict's device1 arrays refuse conversion to NumPy, so a host trip fails."""
    strict = pytest.importorskip("array_api_strict")
    b = get_backend("array_api_strict", "device1", "float32")
    x64 = strict.asarray([[1.0, 2.5]], dtype=strict.float64, device=b.device)
    with pytest.raises(RuntimeError):
        np.asarray(x64)
    x = b.asarray(x64)
    assert (x.dtype, x.device, host_transfers) == (strict.float32, b.device, [])
    # Another device of the same library moves device to device.
    on_cpu = strict.asarray([1.0, 2.0], dtype=strict.float32)
    moved = b.asarray(on_cpu)
    assert (moved.device, host_transfers) == (b.device, [])
    assert strict.all(b.asarray(moved) == strict.asarray([1.0, 2.0], device=b.device))


def test_asarray_brings_foreign_arrays_through_the_host_once(host_transfers):
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_strict")
    b = get_backend("array_api_strict", "device1", "float64")
    x = b.asarray(torch.tensor([[1.0, 2.0]], dtype=torch.float32))
    assert host_transfers == ["Tensor"]
    assert (x.dtype, x.device) == (b.xp.float64, b.device)
    np.testing.assert_array_equal(b.to_numpy(x), np.array([[1.0, 2.0]]))


def test_to_numpy_of_a_list_of_device_scalars_is_one_transfer(backend, host_transfers):
    """Losses collected per step are device scalars; the list crosses to the host once."""
    b = backend
    xp = b.xp
    values = b.asarray(np.array([0.25, 1.5, -3.0]))
    scalars = [xp.sum(values[i : i + 1]) for i in range(3)]  # 0-d arrays on the device
    out = xpnet.to_numpy(scalars)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0.25, 1.5, -3.0])
    assert len(host_transfers) <= 1  # the stacked array only (none on numpy)
    rows = xpnet.to_numpy((b.asarray(np.array([1.0, 2.0])), b.asarray(np.array([3.0, 4.0]))))
    np.testing.assert_array_equal(rows, [[1.0, 2.0], [3.0, 4.0]])
    nested = xpnet.to_numpy([[scalars[0], 2.0], [scalars[1], scalars[2]]])
    np.testing.assert_array_equal(nested, [[0.25, 2.0], [1.5, -3.0]])


def _pytest(*args, env=None):
    import os
    from pathlib import Path

    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        env={**os.environ, **(env or {})},
    )


def test_pytest_refuses_an_unknown_backend():
    out = _pytest("tests/test_backends.py", "--backend", "tensorflow", "--collect-only", "-q")
    assert out.returncode == 4
    assert (
        "ERROR: --backend: no backend test entry matches 'tensorflow'; names: numpy, "
        "array_api_strict, torch, cupy, jax; ids: numpy, array_api_strict, "
        "array_api_strict:device1, array_api_strict:no_float64, torch:cpu, jax:cpu, "
        "torch:cuda, cupy"
    ) in out.stderr


def test_skip_backends_refuses_unknown_names(pytester):
    from pathlib import Path

    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.skip_backends("jax", "torch:cpu", reason="known names and ids")
        def test_known():
            pass

        @pytest.mark.skip_backends("jaxx", reason="a typo")
        def test_typo():
            pass
        """
    )
    out = pytester.runpytest_inprocess(
        "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"
    )
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines(
        ["ERROR: test_skip_backends_refuses_unknown_names.py::test_typo: "
         "skip_backends('jaxx'): unknown backend name or id; names: numpy, *; ids: numpy, *"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--backend", "cupy:cuda"], {}),
        (["--backend", "CuPy:CUDA:0"], {}),
        ([], {"XPNET_BACKEND": "cupy", "XPNET_DEVICE": "cuda"}),
    ],
)
def test_pytest_device_spellings_select_the_same_entry(args, env):
    test = "tests/test_backends.py::test_asarray_keeps_arrays_already_in_place"
    out = _pytest(test, "--collect-only", "-q", *args, env=env)
    # Either the cupy entry is collected, or it is reported as not run: never silence.
    lines = out.stdout.splitlines()
    assert any(line.endswith("[cupy]") for line in lines) or any(
        line.startswith("backend not run: cupy (") for line in lines
    ), out.stdout
    assert not any(line.endswith("[numpy]") for line in lines)


# --- BLAS threads ------------------------------------------------------------------------

CHAPTER_MATMUL_FLOPS = 2 * 100 * 784 * 50  # batch 100 through the 784x50 first layer


@pytest.fixture
def blas(monkeypatch):
    """BLAS at 2 threads (above the test run's 1) with no user thread variables."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library under NumPy here")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        yield


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_small_work_runs_on_one_blas_thread_and_is_restored(blas):
    from xpnet._threads import blas_threads

    assert set(_blas_threads()) == {2}
    with blas_threads(CHAPTER_MATMUL_FLOPS) as n:
        assert n == 1
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_user_thread_variables_win(blas, monkeypatch):
    from xpnet._threads import blas_threads, choose_blas_threads, limit_blas_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_blas_threads(CHAPTER_MATMUL_FLOPS) is None
    with blas_threads(CHAPTER_MATMUL_FLOPS) as n:
        assert n is None
        assert set(_blas_threads()) == {2}
    assert limit_blas_threads(1) is None
    assert set(_blas_threads()) == {2}


def test_busy_machine_gets_one_thread_idle_machine_every_core(blas, monkeypatch):
    import os

    from xpnet import _threads
    from xpnet._threads import blas_threads, choose_blas_threads

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(_threads._busy_now, "update", lambda: cores + 4.0)
    assert choose_blas_threads(1e12) == 1
    monkeypatch.setattr(_threads._busy_now, "update", lambda: 0.0)
    assert choose_blas_threads(1e12) == cores
    with blas_threads(1e12) as n:  # never above the count already in force
        assert n == min(cores, 2)
        assert set(_blas_threads()) == {min(cores, 2)}
    # without /proc/stat, the load average less our own share decides
    monkeypatch.setattr(_threads._busy_now, "update", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 4.0, 0.0, 0.0))
    assert choose_blas_threads(1e12) == 1


def test_session_limit_and_restore(blas):
    from xpnet._threads import limit_blas_threads

    limiter = limit_blas_threads(1)
    assert set(_blas_threads()) == {1}
    limiter.restore_original_limits()
    assert set(_blas_threads()) == {2}


def test_free_memory_is_reported_where_the_arrays_live(backend):
    free, on_host = backend.free_memory_bytes()
    gpu = str(backend.device_name).startswith(("cuda", "gpu"))
    assert on_host is not gpu
    if on_host:
        assert free > 2**20
    else:  # a GPU library may not say
        assert free is None or free > 2**20


# --- CuPy opened without CuPy: a fake module records what xpnet asks of it ---------------


class _FakeCuPy:
    """Stands in for cupy, array_api_compat.cupy and cupy._core._accelerator."""

    def __init__(self, failure=None):
        import types

        self.calls = []
        self.failure = failure
        fake = self

        class Device:
            def __init__(self, i):
                self.id = i

        def ones(n, dtype=None):
            fake.calls.append("ones")
            if fake.failure is not None:
                raise fake.failure
            return types.SimpleNamespace(sum=lambda: 8.0)

        self.cupy = types.SimpleNamespace(ones=ones, float32="float32",
                                          cuda=types.SimpleNamespace(Device=Device))  # fmt: skip
        self.xp = types.SimpleNamespace(float32="float32", float64="float64",
                                        float16="float16")  # fmt: skip
        self.accelerator = types.SimpleNamespace(
            set_reduction_accelerators=lambda names: fake.calls.append(("reductions", names))
        )

    def install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "cupy", self.cupy)
        monkeypatch.setitem(sys.modules, "array_api_compat.cupy", self.xp)
        monkeypatch.setitem(sys.modules, "cupy._core._accelerator", self.accelerator)
        return self


def test_cupy_opens_with_plain_reductions_before_its_probe(monkeypatch):
    """CUB's block reductions compile for seconds each: turned off before the first sum."""
    monkeypatch.delenv("CUPY_ACCELERATORS", raising=False)
    fake = _FakeCuPy().install(monkeypatch)
    b = get_backend("cupy", "cuda")
    assert (b.name, b.device_name, b.on_cpu, b.warms_up) == ("cupy", "cuda:0", False, True)
    assert fake.calls == [("reductions", []), "ones"]


def test_cupy_accelerators_of_the_user_are_left_alone(monkeypatch):
    monkeypatch.setenv("CUPY_ACCELERATORS", "cub")
    fake = _FakeCuPy().install(monkeypatch)
    get_backend("cupy", "cuda")
    assert fake.calls == ["ones"]


@pytest.mark.parametrize(
    ("failure", "start", "advice"),
    [
        (
            RuntimeError("CuPy failed to load libnvrtc.so.13: cannot open shared object file"),
            "backend 'cupy' cannot compile its GPU kernels: CUDA headers or NVRTC are missing "
            "(CuPy failed to load libnvrtc.so.13",
            "pip install 'cupy-cuda13x[ctk]'",
        ),
        (
            type("CompileException", (Exception,), {})(
                'catastrophic error: cannot open source file "cuda_fp16.h"\n1 error'
            ),
            "backend 'cupy' cannot compile its GPU kernels: CUDA headers or NVRTC are missing "
            '(catastrophic error: cannot open source file "cuda_fp16.h")',
            "or install the CUDA Toolkit",
        ),
        (
            RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
            "backend 'cupy' has no usable GPU (cudaErrorNoDevice: no CUDA-capable device",
            "check nvidia-smi and the CUDA driver",
        ),
        (
            RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient"),
            "backend 'cupy' has no usable GPU (cudaErrorInsufficientDriver",
            "check nvidia-smi and the CUDA driver",
        ),
        (
            MemoryError("Out of memory allocating 512 bytes (allocated so far: 0 bytes)."),
            "backend 'cupy': the GPU is out of memory (Out of memory allocating 512 bytes",
            "see nvidia-smi for the processes that hold it",
        ),
    ],
    ids=["nvrtc", "headers", "no-gpu", "driver", "oom"],
)
def test_cupy_probe_names_the_cause(monkeypatch, failure, start, advice):
    from xpnet.backends import _cupy

    monkeypatch.setattr(_cupy, "_installed", lambda dist: dist == "cupy-cuda13x")
    _FakeCuPy(failure).install(monkeypatch)
    with pytest.raises(BackendError) as info:
        get_backend("cupy", "cuda")
    message = str(info.value)
    assert message.startswith(start) and advice in message and "\n" not in message


def test_toolkit_hint_names_the_installed_cupy_wheel(monkeypatch):
    from xpnet.backends import _cupy

    monkeypatch.setattr(_cupy, "_installed", lambda dist: dist == "cupy-cuda12x")
    assert _cupy.CuPy().toolkit_hint.startswith("pip install 'cupy-cuda12x[ctk]'")


def test_torch_out_of_memory_in_the_probe_says_so(fake_cuda_torch, monkeypatch):
    def ones(*args, **kwargs):
        raise fake_cuda_torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 MiB")

    monkeypatch.setattr(fake_cuda_torch, "ones", ones)
    with pytest.raises(BackendError, match=r"^backend 'torch': the GPU is out of memory \(CUDA"):
        get_backend("torch", "cuda")


def test_capabilities_of_cpu_backends():
    """CPU backends govern CPU threads and warm nothing up; torch's pool is its own."""
    b = get_backend("numpy")
    assert (b.on_cpu, b.warms_up, b.intra_op_threads(), b.contiguous_stacked_weights) == (
        True, False, None, False)  # fmt: skip
    torch = pytest.importorskip("torch")
    get, set_ = get_backend("torch", "cpu").intra_op_threads()
    assert (get, set_) == (torch.get_num_threads, torch.set_num_threads)
    jax = pytest.importorskip("jax")
    assert jax is not None and get_backend("jax", "cpu").warms_up


def test_as_backend_takes_a_backend_a_name_or_nothing(monkeypatch):
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    monkeypatch.delenv("XPNET_DTYPE", raising=False)
    b = get_backend("numpy", dtype="float32")
    assert xpnet.backends.as_backend(b) is b
    b64 = xpnet.backends.as_backend(b, "float64")
    assert (b64.name, b64.dtype_name, b.dtype_name) == ("numpy", "float64", "float32")
    assert xpnet.backends.as_backend("numpy", "float64").dtype_name == "float64"
    assert xpnet.backends.as_backend(None).dtype_name == "float32"
    with pytest.raises(xpnet.BackendError, match="unknown"):
        xpnet.backends.as_backend("nosuch")

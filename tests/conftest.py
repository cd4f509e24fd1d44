"""One backend fixture for the whole suite.

``backend`` runs a test on every available backend in float64 (the chapter's figures
need it); ``backend32`` in float32, including array-api-strict's ``no_float64`` device.
``--backend NAME[:DEVICE]`` (or ``XPNET_BACKEND``/``XPNET_DEVICE``) narrows the set;
device names are compared in one spelling, so ``cupy:cuda``, ``cupy:cuda:0`` and
``XPNET_BACKEND=cupy XPNET_DEVICE=cuda`` all select the ``cupy`` entry.

Backends that cannot run here (library not installed, no usable GPU) are probed once and
their tests deselected; the end of the run lists them, one line each, with the reason.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import pytest

# The jax:cpu entry must not start JAX's GPU platforms: they would reserve most of the GPU
# memory the GPU tests need. Read by JAX at import, so set before any test imports it.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from xpnet import BackendError, get_backend  # noqa: E402
from xpnet._threads import limit_blas_threads, user_chose_threads  # noqa: E402
from xpnet.backends import BACKENDS, canonical_device  # noqa: E402
from xpnet.backends import SPECS as LIBRARIES  # noqa: E402


class Spec(NamedTuple):
    id: str
    name: str
    device: str  # canonical spelling (xpnet.backends.canonical_device)
    gpu: bool


SPECS = [
    Spec("numpy", "numpy", "cpu", False),
    Spec("array_api_strict", "array_api_strict", "CPU_DEVICE", False),
    Spec("array_api_strict:device1", "array_api_strict", "device1", False),
    Spec("torch:cpu", "torch", "cpu", False),
    Spec("jax:cpu", "jax", "cpu", False),
    Spec("torch:cuda", "torch", "cuda:0", True),
    Spec("cupy", "cupy", "cuda:0", True),
]
SPECS32 = (
    SPECS[:3]
    + [Spec("array_api_strict:no_float64", "array_api_strict", "no_float64", False)]
    + SPECS[3:]
)
_ALL_IDS = list(dict.fromkeys(s.id for s in SPECS32))

pytest_plugins = ["pytester"]  # the suite's own hooks are tested on small test files

_UNAVAILABLE = pytest.StashKey[dict]()
_WANTED = pytest.StashKey[object]()
_BLAS = pytest.StashKey[object]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        default=[],
        help="run backend tests only on these names or name:device pairs (numpy, torch, "
        "torch:cuda, cupy:cuda:0, array_api_strict:device1, ...); repeatable",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_UNAVAILABLE] = {}
    config.stash[_WANTED] = _wanted(config)
    # Every test's matmuls are small: extra BLAS threads would only wait on each other and
    # on whatever else runs. The user's OPENBLAS_NUM_THREADS / OMP_NUM_THREADS still win.
    config.stash[_BLAS] = limit_blas_threads(1)
    if not user_chose_threads():
        try:  # torch's own intra-op threads spin while they wait: one, as for BLAS
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(1)


def pytest_unconfigure(config: pytest.Config) -> None:
    limiter = config.stash.get(_BLAS, None)
    if limiter is not None:
        limiter.restore_original_limits()


def _wanted(config: pytest.Config) -> list[tuple[str, str | None]] | None:
    """The (name, canonical device or None) pairs asked for; None means all."""
    tokens, source = config.getoption("--backend"), "--backend"
    if not tokens and os.environ.get("XPNET_BACKEND"):
        dev = os.environ.get("XPNET_DEVICE")
        name = os.environ["XPNET_BACKEND"]
        tokens, source = [f"{name}:{dev}" if dev else name], "XPNET_BACKEND/XPNET_DEVICE"
    if not tokens:
        return None
    out = []
    for token in tokens:
        name, _, dev = token.strip().partition(":")
        name = name.strip().lower().replace("-", "_")
        why = ""
        try:
            key = (name, canonical_device(name, dev) if dev else None)
        except BackendError as exc:
            key, why = None, f" ({exc})"
        if key is None or not any(_matches([key], s) for s in SPECS32):
            raise pytest.UsageError(
                f"{source}: no backend test entry matches {token!r}{why}; names: "
                f"{', '.join(BACKENDS)}; ids: {', '.join(_ALL_IDS)}"
            )
        out.append(key)
    return out


def _matches(wanted: list[tuple[str, str | None]] | None, spec: Spec) -> bool:
    if wanted is None:
        return True
    return any(name == spec.name and dev in (None, spec.device) for name, dev in wanted)


@functools.cache
def _unavailable(name: str, device: str) -> str | None:
    """Why this backend cannot run here (probed once per test run), or None."""
    _allow_float64(name)
    try:
        get_backend(name, device, "float32")
    except BackendError as exc:
        return str(exc)
    return None


@functools.cache
def _allow_float64(name: str) -> None:
    """The suite checks float64 figures: libraries that keep float64 off (JAX) turn it on
    once, before use."""
    LIBRARIES[name].allow_float64()


@pytest.hookimpl(trylast=True)  # after -k/-m, so only backends still wanted are probed
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.stash[_WANTED]
    unavailable = config.stash[_UNAVAILABLE]
    keep, drop = [], []
    for item in items:
        for mark in item.iter_markers("skip_backends"):
            check_skip_backends(mark.args, item.nodeid)
        params = item.callspec.params if hasattr(item, "callspec") else {}
        spec = params.get("backend_spec") or params.get("backend32_spec")
        if spec is None:
            keep.append(item)
            continue
        reason = _unavailable(spec.name, spec.device) if _matches(wanted, spec) else None
        if reason is not None:
            unavailable[spec.id] = reason
        (keep if _matches(wanted, spec) and reason is None else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    for spec_id, reason in config.stash.get(_UNAVAILABLE, {}).items():
        terminalreporter.write_line(f"backend not run: {spec_id} ({reason})")


def check_skip_backends(names: tuple, where: str) -> None:
    """Refuse a ``skip_backends`` mark that names no backend or id: a typo would skip nothing."""
    unknown = [n for n in names if not isinstance(n, str) or n not in (*BACKENDS, *_ALL_IDS)]
    if unknown or not names:
        what = ", ".join(map(repr, unknown)) if unknown else "no backend"
        raise pytest.UsageError(
            f"{where}: skip_backends({what}): unknown backend name or id; names: "
            f"{', '.join(BACKENDS)}; ids: {', '.join(_ALL_IDS)}"
        )


def _params(specs: list[Spec]) -> list:
    return [pytest.param(s, id=s.id, marks=[pytest.mark.gpu] if s.gpu else []) for s in specs]


def _open(spec: Spec, dtype: str, request: pytest.FixtureRequest):
    # @pytest.mark.skip_backends("jax", "torch:cpu", reason=...): names or ids, as SciPy's
    # skip_xp_backends, so no test branches on the backend itself.
    for mark in request.node.iter_markers("skip_backends"):
        if spec.name in mark.args or spec.id in mark.args:
            pytest.skip(f"{spec.id}: {mark.kwargs.get('reason', 'not applicable')}")
    _allow_float64(spec.name)
    try:
        return get_backend(spec.name, spec.device, dtype)
    except BackendError as exc:  # e.g. a dtype this device lacks
        pytest.skip(f"{spec.id}: {exc}")


@pytest.fixture(params=_params(SPECS))
def backend_spec(request):
    return request.param


@pytest.fixture
def backend(backend_spec, request):
    """A float64 :class:`xpnet.Backend` for each available library and device."""
    return _open(backend_spec, "float64", request)


@pytest.fixture(params=_params(SPECS32))
def backend32_spec(request):
    return request.param


@pytest.fixture
def backend32(backend32_spec, request):
    """A float32 :class:`xpnet.Backend`, also on devices without float64."""
    return _open(backend32_spec, "float32", request)


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """A command's environment with nothing to download from and nothing cached: full
    MNIST is missing and has no mirror, the backend is the default one."""
    monkeypatch.setenv("XPNET_MNIST_MIRRORS", "")
    monkeypatch.setenv("XPNET_FASHION_MNIST_MIRRORS", "")
    monkeypatch.setenv("XPNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "nodata"))
    for var in ("XPNET_BACKEND", "XPNET_DEVICE", "XPNET_DTYPE", "XPNET_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

"""One backend fixture for the whole suite.

``backend`` runs a test on every importable backend in float64 (the chapter's figures
need it); ``backend32`` in float32, including array-api-strict's ``no_float64`` device.
``--backend NAME[:DEVICE]`` (or ``XPNET_BACKEND``/``XPNET_DEVICE``) narrows the set.
"""

from __future__ import annotations

import os

import pytest

from xpnet import BackendError, get_backend

# (id, backend name, device, needs a GPU)
SPECS = [
    ("numpy", "numpy", None, False),
    ("array_api_strict", "array_api_strict", None, False),
    ("array_api_strict:device1", "array_api_strict", "device1", False),
    ("torch:cpu", "torch", "cpu", False),
    ("jax:cpu", "jax", "cpu", False),
    ("torch:cuda", "torch", "cuda", True),
    ("cupy", "cupy", "cuda", True),
]
SPECS32 = (
    SPECS[:3]
    + [("array_api_strict:no_float64", "array_api_strict", "no_float64", False)]
    + SPECS[3:]
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        default=[],
        help="run backend tests only on these ids or names (numpy, torch, torch:cuda, "
        "array_api_strict:device1, ...); repeatable",
    )


def _selected(config: pytest.Config, spec_id: str) -> bool:
    wanted = config.getoption("--backend")
    if not wanted and os.environ.get("XPNET_BACKEND"):
        name = os.environ["XPNET_BACKEND"].strip().lower()
        dev = os.environ.get("XPNET_DEVICE")
        wanted = [f"{name}:{dev}" if dev else name]
    if not wanted:
        return True
    base = spec_id.split(":")[0]
    return any(w == spec_id or w == base for w in wanted)


def _params(specs):
    out = []
    for spec in specs:
        marks = [pytest.mark.gpu] if spec[3] else []
        out.append(pytest.param(spec, id=spec[0], marks=marks))
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        spec = params.get("backend_spec") or params.get("backend32_spec")
        (keep if spec is None or _selected(config, spec[0]) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _open(spec, dtype, request):
    spec_id, name, device, _ = spec
    # @pytest.mark.skip_backends("jax", "torch:cpu", reason=...): names or ids, as SciPy's
    # skip_xp_backends, so no test branches on the backend itself.
    for mark in request.node.iter_markers("skip_backends"):
        if name in mark.args or spec_id in mark.args:
            pytest.skip(f"{spec_id}: {mark.kwargs.get('reason', 'not applicable')}")
    if name == "jax":
        jax = pytest.importorskip("jax", reason="jax:cpu: jax is not installed")
        # The suite checks float64 figures; JAX needs x64 switched on for them.
        jax.config.update("jax_enable_x64", True)
    try:
        return get_backend(name, device, dtype)
    except BackendError as exc:
        pytest.skip(f"{spec_id}: {exc}")


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

"""Numerical differentiation: the chapter's figures on every backend, both gradient ways."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xpnet
from xpnet import PrecisionWarning
from xpnet.numerical import UnitVectors, central_difference, resolve_step
from xpnet.testing import assert_close, numerical_atol, tolerance

RTOL64, ATOL64 = tolerance("float64")
#: Truncation error of a central difference with the chapter's step on a cubic: h².
H2 = xpnet.default_step("float64") ** 2
IN_PLACE = pytest.mark.skip_backends("jax", reason="JAX arrays cannot be perturbed in place")


def function_1(x):
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def function_2_batched(xp):
    return lambda stack: xp.sum(stack**2, axis=-1)


def test_numerical_diff_chapter_figures():
    assert xpnet.numerical_diff(function_1, 5) == 0.1999999999990898
    assert xpnet.numerical_diff(function_1, 10) == 0.2999999999986347
    # The forward difference, the chapter's first definition, is off by h * f''/2 = 1e-6.
    forward = xpnet.numerical_diff(function_1, 5, method="forward")
    assert forward == pytest.approx(0.2 + 1e-6, rel=RTOL64)


def test_numerical_diff_chapter_figures_on_every_backend(backend):
    for x0, expected in ((5.0, 0.1999999999990898), (10.0, 0.2999999999986347)):
        d = xpnet.numerical_diff(function_1, backend.asarray(np.asarray(x0)))
        assert_close(d, np.float64(expected), xp=backend.xp, device=backend.device,
                     dtype=backend.xp.float64, rtol=RTOL64, atol=0)  # fmt: skip
        assert float(backend.to_numpy(d)) == pytest.approx(expected, rel=RTOL64, abs=0)


def test_edge_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="need a 1-D x"):
        xpnet.partial_derivative(function_2, np.asarray(3.0), 0)
    with pytest.raises(TypeError, match="init_x must be an array"):
        xpnet.gradient_descent(function_2, 3.0)
    empty = np.zeros((0, 3))
    g = xpnet.numerical_gradient(lambda s: np.sum(s, axis=(1, 2)), empty, batched=True)
    assert g.shape == (0, 3)


def test_numerical_diff_elementwise_over_linspace(backend):
    xp = backend.xp
    x = xp.linspace(-1, 1, 100, dtype=xp.float64, device=backend.device)
    d = xpnet.numerical_diff(function_1, x)
    ref = np.linspace(-1, 1, 100)
    ref = (function_1(ref + 1e-4) - function_1(ref - 1e-4)) / 2e-4
    assert_close(d, ref, xp=xp, device=backend.device, dtype=xp.float64)
    host = backend.to_numpy(d)
    assert host[0] == pytest.approx(0.07999999999994123, rel=RTOL64)
    assert host[-1] == pytest.approx(0.11999999999998123, rel=RTOL64)


def test_partial_derivatives_chapter_figures(backend):
    x = backend.asarray(np.array([3.0, 4.0]))
    d0 = xpnet.partial_derivative(function_2, x, 0)
    d1 = xpnet.partial_derivative(function_2, x, 1)
    assert float(backend.to_numpy(d0)) == pytest.approx(6.00000000000378, rel=RTOL64)
    assert float(backend.to_numpy(d1)) == pytest.approx(7.999999999999119, rel=RTOL64)
    assert_close(d0, np.float64(6.0), xp=backend.xp, device=backend.device,
                 atol=numerical_atol("float64"))  # fmt: skip
    with pytest.raises(ValueError, match="0 <= i < 2"):
        xpnet.partial_derivative(function_2, x, 2)


POINTS = [((3.0, 4.0), (6.0, 8.0)), ((0.0, 2.0), (0.0, 4.0)), ((3.0, 0.0), (6.0, 0.0))]


@pytest.mark.parametrize(("point", "grad"), POINTS)
@pytest.mark.parametrize(
    "batched",
    [pytest.param(False, marks=IN_PLACE, id="in_place"), pytest.param(True, id="batched")],
)
def test_numerical_gradient_chapter_figures(backend, point, grad, batched):
    b = backend
    x = b.asarray(np.array(point))
    f = function_2_batched(b.xp) if batched else function_2
    g = xpnet.numerical_gradient(f, x, batched=batched)
    # A quadratic has no truncation error: only rounding, numerical_atol.
    assert_close(g, np.array(grad), xp=b.xp, device=b.device, dtype=b.xp.float64,
                 atol=numerical_atol("float64"))  # fmt: skip
    np.testing.assert_array_equal(b.to_numpy(x), np.array(point))  # restored / untouched


@IN_PLACE
def test_batched_and_in_place_agree_bit_for_bit(backend):
    rng = np.random.default_rng(1)
    w = backend.asarray(rng.normal(size=(3, 4)))
    xp = backend.xp
    g1 = xpnet.numerical_gradient(lambda _: xp.sum(w**3), w)
    g2 = xpnet.numerical_gradient(
        lambda s: xp.sum(s**3, axis=(1, 2)), w, batched=True, max_bytes=300
    )
    np.testing.assert_array_equal(backend.to_numpy(g1), backend.to_numpy(g2))
    # Central differences of x³ carry a truncation error of exactly h² = 1e-8.
    assert_close(g2, 3 * backend.to_numpy(w) ** 2 + H2, xp=xp, device=backend.device,
                 atol=numerical_atol("float64"))  # fmt: skip


@IN_PLACE
def test_closure_style_reads_the_perturbed_array(backend):
    """The chapter's ``f = lambda w: net.loss(x, t)``: f ignores its argument."""
    xp = backend.xp
    W = backend.asarray(
        np.array([[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]])
    )
    x = backend.asarray(np.array([[0.6, 0.9]]))
    t = backend.asarray(np.array([2]))
    before = backend.to_numpy(W).copy()
    dW = xpnet.numerical_gradient(lambda _: xpnet.softmax_cross_entropy(x @ W, t), W)
    # The analytic gradient x^T (softmax(xW) - onehot).
    p = xpnet.softmax(x @ W)
    onehot = backend.to_numpy(
        xp.astype(t[:, None] == xp.arange(3, device=backend.device), xp.float64)
    )  # noqa: E501
    ref = backend.to_numpy(x).T @ (backend.to_numpy(p) - onehot)
    # Truncation error h² times the loss's third derivative (of order 1 here).
    assert_close(dW, ref, atol=H2, xp=xp, device=backend.device)
    np.testing.assert_array_equal(backend.to_numpy(W), before)


@IN_PLACE
def test_perturbed_array_is_restored_when_f_raises(backend):
    W = backend.asarray(np.array([1.0, 2.0, 3.0]))
    calls = []

    def f(w):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return backend.xp.sum(w)

    with pytest.raises(RuntimeError, match="boom"):
        xpnet.numerical_gradient(f, W)
    np.testing.assert_array_equal(backend.to_numpy(W), [1.0, 2.0, 3.0])


@IN_PLACE
def test_integer_input_is_not_truncated(backend):
    """The chapter's ``np.array([3, 4])`` gives (25000, 35000) there; here (6, 8)."""
    x = backend.asarray(np.array([3, 4]))
    g = xpnet.numerical_gradient(function_2, x)
    assert backend.xp.isdtype(g.dtype, "real floating")
    np.testing.assert_allclose(backend.to_numpy(g), [6.0, 8.0], atol=numerical_atol("float64"))
    np.testing.assert_array_equal(backend.to_numpy(x), [3, 4])


def test_read_only_array_points_to_batched():
    x = np.array([3.0, 4.0])
    x.flags.writeable = False
    with pytest.raises(TypeError, match="read-only .* pass batched=True"):
        xpnet.numerical_gradient(function_2, x)
    g = xpnet.numerical_gradient(lambda s: np.sum(s**2, axis=-1), x, batched=True)
    np.testing.assert_allclose(g, [6.0, 8.0], atol=numerical_atol("float64"))


def test_jax_in_place_way_points_to_batched():
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(TypeError, match="batched=True"):
        xpnet.numerical_gradient(function_2, jnp.asarray([3.0, 4.0]))


def test_float32_warns_and_uses_a_larger_step(backend32):
    b = backend32
    x = b.asarray(np.array([3.0, 4.0]))
    f = function_2_batched(b.xp)
    with pytest.warns(PrecisionWarning, match="use float64 to check gradients"):
        g = xpnet.numerical_gradient(f, x, batched=True)
    assert g.dtype == b.xp.float32
    np.testing.assert_allclose(b.to_numpy(g), [6.0, 8.0], atol=numerical_atol("float32", 5e-3))
    assert xpnet.default_step("float32") == 5e-3 and xpnet.default_step("float64") == 1e-4
    assert xpnet.default_step(x) == 5e-3  # from the array's dtype, any backend


def test_batched_memory_bound_sets_the_chunk():
    seen = []

    def f(stack):
        seen.append(stack.shape[0])
        return np.sum(stack**2, axis=(1, 2))

    x = np.ones((10, 10))
    g = xpnet.numerical_gradient(f, x, batched=True, max_bytes=2 * 100 * 8 * 7)
    assert seen == [14] * 14 + [4]  # chunks of k=7 perturbations, + and - copies
    np.testing.assert_allclose(g, 2 * x, atol=numerical_atol("float64"))


# rtol: the chapter prints these to 7 or 8 significant digits.
@pytest.mark.parametrize(
    ("lr", "steps", "expected", "rtol"),
    [
        (0.1, 20, (-0.03458765, 0.04611686), 1e-6),
        (0.1, 100, (-6.11110793e-10, 8.14814391e-10), 1e-5),
    ],
)
def test_gradient_descent_chapter_figures(backend, lr, steps, expected, rtol):
    b = backend
    init = b.asarray(np.array([-3.0, 4.0]))
    x, history = xpnet.gradient_descent(function_2, init, lr=lr, step_num=steps)
    assert_close(x, np.array(expected), rtol=rtol, atol=0, xp=b.xp, device=b.device)
    assert tuple(history.shape) == (steps, 2)
    np.testing.assert_array_equal(b.to_numpy(history)[0], [-3.0, 4.0])
    np.testing.assert_array_equal(b.to_numpy(init), [-3.0, 4.0])


def test_gradient_descent_extreme_learning_rates(backend):
    init = backend.asarray(np.array([-3.0, 4.0]))
    big, _ = xpnet.gradient_descent(function_2, init, lr=10.0, step_num=100)
    # Diverged without crashing: |x| grows 19x a step until x ± h rounds to x (~1e13),
    # where the central difference becomes 0 and the walk stops.
    assert np.all(np.abs(backend.to_numpy(big)) > 1e10)
    assert np.all(np.isfinite(backend.to_numpy(big)))
    tiny, _ = xpnet.gradient_descent(function_2, init, lr=1e-10, step_num=100)
    # x_{k+1} = (1 - 2 lr) x_k: 100 steps scale x by (1 - 2e-10)^100, about 1 - 2e-8.
    np.testing.assert_allclose(
        backend.to_numpy(tiny), np.array([-3.0, 4.0]) * (1 - 2e-10) ** 100, rtol=RTOL64
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_gradient_of_random_quadratics(n, seed):
    """f(x) = ½xᵀAx + bᵀx has gradient Ax + b; central differences are exact up to rounding."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    a = m + m.T
    bvec = rng.normal(size=n)
    x = rng.normal(size=n)
    g = xpnet.numerical_gradient(lambda v: 0.5 * v @ a @ v + bvec @ v, x.copy())
    rtol, _ = tolerance("float64")
    # rounding of f (|f| of order 10 here) divided by 2h: the one numerical tolerance
    np.testing.assert_allclose(g, a @ x + bvec, rtol=rtol, atol=10 * numerical_atol("float64"))


def chapter_numerical_gradient(f, x):
    """The chapter's own loop (common/gradient.py), the reference implementation."""
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 4)])
def test_closure_loop_matches_the_chapters_loop_bit_for_bit(shape):
    x = np.random.default_rng(2).normal(size=shape)
    for f in (lambda w: np.sum(w**2), lambda w: np.sum(np.sin(w) * w**3)):
        expected = chapter_numerical_gradient(f, x.copy())
        np.testing.assert_array_equal(xpnet.numerical_gradient(f, x), expected)


@IN_PLACE
@pytest.mark.parametrize("batched", [False, True], ids=["in_place", "batched"])
def test_non_scalar_f_is_one_clear_error(backend, batched):
    x = backend.asarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
    xp = backend.xp
    if batched:  # one value per point expected, two per point returned
        f, message = (
            (lambda s: xp.sum(s**2, axis=-1)),
            r"one value per stacked point.*returned shape \(8, 2\)",
        )
    else:  # the chapter's function_2 on a 2-D x returns one value per row
        f, message = (
            (lambda w: xp.sum(w**2, axis=-1)),
            r"f returned shape \(2,\), expected a scalar",
        )
    with pytest.raises(ValueError, match=message) as info:
        xpnet.numerical_gradient(f, x, batched=batched)
    assert "\n" not in str(info.value)
    np.testing.assert_array_equal(backend.to_numpy(x), [[1.0, 2.0], [3.0, 4.0]])


def test_central_difference_any_trailing_shape_and_lazy_unit_vectors(backend):
    xp = backend.xp
    rng = np.random.default_rng(3)
    host_x = rng.normal(size=(3, 2))
    x = backend.asarray(host_x)

    def f(offsets):  # (m, 3, 2) -> (m, 2): column sums of (x + offset)³
        return xp.sum((x[None, ...] + offsets) ** 3, axis=1)

    eye = UnitVectors(x)
    assert eye.shape == (6, 3, 2)
    np.testing.assert_array_equal(backend.to_numpy(eye[1:3, ...]), np.eye(6)[1:3].reshape(2, 3, 2))
    h = xpnet.default_step("float64")
    calls = []

    def counted(offsets):
        calls.append(offsets.shape[0])
        return f(offsets)

    # 96 bytes per direction by default (3 * 2 float64, both signs): 200 bytes fit 2.
    g = central_difference(counted, eye, h, max_bytes=200)
    assert calls == [4, 4, 4]
    # d/dx_ij of column sums: 3 x_ij² in column j (+ h² truncation), 0 elsewhere.
    expected = np.zeros((6, 2))
    for i in range(6):
        expected[i, i % 2] = 3 * host_x.ravel()[i] ** 2 + H2
    assert_close(g, expected, xp=xp, device=backend.device, dtype=x.dtype,
                 atol=numerical_atol("float64"))  # fmt: skip
    whole = central_difference(f, eye[0:6, ...], h)  # the same from a materialised stack
    np.testing.assert_array_equal(backend.to_numpy(whole), backend.to_numpy(g))


def test_resolve_step_warns_once_and_only_below_float64(backend32):
    x32 = backend32.asarray(np.array([1.0]))
    with pytest.warns(PrecisionWarning, match="float32: expect only a few correct digits"):
        assert resolve_step(x32) == 5e-3
    with pytest.warns(PrecisionWarning):
        assert resolve_step(x32, 1e-3) == 1e-3
    with pytest.warns(PrecisionWarning):
        assert resolve_step(x32.dtype, xp=backend32.xp) == 5e-3


def test_resolve_step_is_silent_in_float64(backend):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_step(backend.asarray(np.array([1.0]))) == 1e-4
        assert resolve_step(backend.xp.float64, 0.5, xp=backend.xp) == 0.5


def test_one_machine_epsilon_table_for_steps_and_tolerances():
    from xpnet._tolerances import EPS, machine_eps

    for name in ("float64", "float32", "float16"):
        assert EPS[name] == float(np.finfo(name).eps) == machine_eps(np.zeros(1, name))
        assert tolerance(name)[1] == 100 * EPS[name]
    assert xpnet.default_step("bfloat16") == 2e-1 and xpnet.default_step("float16") == 1e-1
    with pytest.raises(ValueError, match=r"^default_step: unknown dtype 'float8'; one of \["):
        xpnet.default_step("float8")
    with pytest.raises(TypeError, match="^default_step: pass xp= with a dtype object"):
        xpnet.default_step(np.float32)

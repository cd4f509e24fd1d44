"""Parity checks: a backend against a NumPy float64 reference, check by check.

Inputs are made on the host with NumPy; only the function under test runs on the backend
being checked; the result is brought back and compared with the reference backend's
float64 result under the tolerance of the checked dtype (:mod:`xpnet.testing`). Used by
``scripts/parity.py`` and by the ``parity``-marked tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .backends import Backend, to_numpy
from .functions import relu, relu_grad, sigmoid, sigmoid_grad, softmax, step_function
from .losses import cross_entropy_error, mean_squared_error, softmax_cross_entropy
from .nets import PARAM_NAMES, MultiLayerNet, TwoLayerNet
from .numerical import PrecisionWarning, numerical_diff, numerical_gradient
from .optimizers import OPTIMIZERS, get_optimizer
from .parity_layers import LAYER_CHECKS
from .testing import numerical_atol, tolerance
from .training import train

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "compare",
    "run_check",
    "run_parity",
]


@dataclass(frozen=True)
class CheckResult:
    """One comparison: the largest differences and whether they are within tolerance."""

    check: str
    dtype: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    check: str, actual: dict[str, np.ndarray], desired: dict[str, np.ndarray], dtype: str,
    *, training: bool = False, atol: float | None = None,
) -> CheckResult:  # fmt: skip
    """Compare named host arrays under the dtype's (training) tolerance."""
    rtol, default_atol = tolerance(dtype, training=training)
    atol = default_atol if atol is None else atol
    max_abs = max_rel = 0.0
    passed, detail = True, ""
    for name, d in desired.items():
        a = np.asarray(actual[name], dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        if a.shape != d.shape:
            return CheckResult(check, dtype, np.inf, np.inf, rtol, atol, False,
                               f"{name}: shape {a.shape} != {d.shape}")  # fmt: skip
        diff = np.abs(a - d)
        if not np.all(np.isfinite(a)):
            passed, detail = False, f"{name}: non-finite values"
            max_abs = max_rel = np.inf
            continue
        max_abs = max(max_abs, float(diff.max(initial=0.0)))
        nz = np.abs(d) > 0
        if nz.any():
            max_rel = max(max_rel, float((diff[nz] / np.abs(d[nz])).max()))
        if not np.all(diff <= atol + rtol * np.abs(d)):
            passed, detail = False, f"{name}: outside rtol={rtol:.1e}, atol={atol:.1e}"
    return CheckResult(check, dtype, max_abs, max_rel, rtol, atol, passed, detail)


# --- the checks: each takes a backend (already in the dtype under test) and returns ----
# --- named host arrays. The reference is the same call on NumPy in float64. -----------

_RNG_SEED = 20261129


def _inputs(shape: tuple[int, ...], scale: float = 3.0, seed: int = 0) -> np.ndarray:
    return scale * np.random.default_rng(_RNG_SEED + seed).standard_normal(shape)


def _elementwise(fn: Callable[[Any], Any]) -> Callable[[Backend], dict[str, np.ndarray]]:
    def check(b: Backend) -> dict[str, np.ndarray]:
        x = _inputs((16, 10))
        x[0, :4] = (-80.0, -1e-3, 1e-3, 80.0)  # saturation and the kink at 0
        return {"y": to_numpy(fn(b.asarray(x)))}

    return check


def _softmax_check(b: Backend) -> dict[str, np.ndarray]:
    x = _inputs((16, 10))
    return {"batched": to_numpy(softmax(b.asarray(x))), "one": to_numpy(softmax(b.asarray(x[0])))}


def _loss_check(b: Backend) -> dict[str, np.ndarray]:
    logits = _inputs((32, 10))
    labels = np.random.default_rng(_RNG_SEED).integers(0, 10, size=32)
    one_hot = np.eye(10)[labels]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y, t_lab, t_hot = b.asarray(p), b.asarray(labels), b.asarray(one_hot)
    return {
        "mse": to_numpy(mean_squared_error(y, t_hot)),
        "cee_onehot": to_numpy(cross_entropy_error(y, t_hot)),
        "cee_labels": to_numpy(cross_entropy_error(y, t_lab)),
        "softmax_ce": to_numpy(softmax_cross_entropy(b.asarray(logits), t_lab)),
    }


def _numerical_diff_check(b: Backend) -> dict[str, np.ndarray]:
    x = b.asarray(np.linspace(-1.0, 1.0, 100))
    return {"diff": to_numpy(numerical_diff(lambda v: 0.01 * v**2 + 0.1 * v, x))}


def _quadratic(b: Backend) -> tuple[Any, Any, np.ndarray]:
    m = _inputs((6, 6), 1.0, seed=1)
    a = b.asarray(m + m.T)
    x = _inputs((6,), 1.0, seed=2)
    return a, b.asarray(x), x


def _numerical_gradient_in_place(b: Backend) -> dict[str, np.ndarray]:
    a, x, _ = _quadratic(b)
    xp = b.xp
    g = numerical_gradient(lambda _: 0.5 * xp.sum(x * (a @ x)), x)  # closure, chapter's way
    return {"grad": to_numpy(g)}


def _numerical_gradient_batched(b: Backend) -> dict[str, np.ndarray]:
    a, x, _ = _quadratic(b)
    xp = b.xp
    g = numerical_gradient(lambda s: 0.5 * xp.sum(s * (s @ a), axis=-1), x, batched=True)
    return {"grad": to_numpy(g)}


NetFactory = Callable[[Backend], MultiLayerNet]


def _two_layer(hidden: int) -> NetFactory:
    return lambda b: TwoLayerNet(784, hidden, 10, backend=b, seed=1, weight_init_std=0.1)


def _deep(b: Backend) -> MultiLayerNet:
    return MultiLayerNet(784, [40, 30], 10, weight_decay_lambda=0.01, backend=b, seed=2)


def _batch(rows: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_RNG_SEED)
    x, t = rng.random((20, 784)), rng.integers(0, 10, size=20)
    return x[:rows], t[:rows]


def _backprop_check(make: NetFactory) -> Callable[[Backend], dict[str, np.ndarray]]:
    def fn(b: Backend) -> dict[str, np.ndarray]:
        loss, grads = make(b).loss_and_gradient(*_batch())
        return {"loss": to_numpy(loss), **{k: to_numpy(v) for k, v in grads.items()}}

    return fn


def _numerical_check(make: NetFactory, rows: int) -> Callable[[Backend], dict[str, np.ndarray]]:
    def fn(b: Backend) -> dict[str, np.ndarray]:
        grads = make(b).numerical_gradient(*_batch(rows))
        return {k: to_numpy(v) for k, v in grads.items()}

    return fn


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """1200 learnable synthetic uint8 "digits": class centres plus noise."""
    rng = np.random.default_rng(_RNG_SEED)
    centres = rng.integers(0, 256, size=(10, 784))
    labels = rng.integers(0, 10, size=1200)
    noise = rng.integers(-80, 80, size=(1200, 784))
    return np.clip(centres[labels] + noise, 0, 255).astype(np.uint8), labels


def _training_check(b: Backend) -> dict[str, np.ndarray]:
    x, labels = _digits()
    net = TwoLayerNet(784, 50, 10, backend=b, seed=0)
    h = train(net, x[:1000], labels[:1000], x[1000:], labels[1000:], iters=300, lr=0.1, seed=3)
    out = {"loss": np.asarray(h.loss), "test_acc": np.asarray(h.test_acc)}
    out.update({k: to_numpy(net.params[k]) for k in PARAM_NAMES})
    return out


def _optimizer_check(name: str, steps: int) -> Callable[[Backend], dict[str, np.ndarray]]:
    """``steps`` updates of one optimizer on seeded host gradients."""

    def fn(b: Backend) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(_RNG_SEED)
        params = {"W1": b.asarray(rng.standard_normal((30, 20))),
                  "b1": b.asarray(rng.standard_normal(20))}  # fmt: skip
        grads = [(rng.standard_normal((30, 20)), rng.standard_normal(20)) for _ in range(steps)]
        opt = get_optimizer(name, lr=0.01)
        for gw, gb in grads:
            opt.update(params, {"W1": b.asarray(gw), "b1": b.asarray(gb)})
        return {k: to_numpy(v) for k, v in params.items()}

    return fn


def _deep_training_check(b: Backend) -> dict[str, np.ndarray]:
    x, labels = _digits()
    net = MultiLayerNet(784, [40, 30], 10, backend=b, seed=0)
    h = train(net, x[:1000], labels[:1000], x[1000:], labels[1000:], iters=300, seed=3,
              optimizer=get_optimizer("adam", lr=0.001))  # fmt: skip
    out = {"loss": np.asarray(h.loss), "test_acc": np.asarray(h.test_acc)}
    out.update({k: to_numpy(v) for k, v in net.params.items()})
    return out


@dataclass(frozen=True)
class Check:
    """A parity check and where it applies."""

    fn: Callable[[Backend], dict[str, np.ndarray]]
    float64_only: bool = False  # numerical derivatives are only meaningful in float64
    training: bool = False  # multi-step: the dtype's training tolerance
    in_place: bool = False  # perturbs arrays in place: needs Backend.mutable_arrays
    numerical: bool = False  # central differences: round-off of f divided by 2h


CHECKS: dict[str, Check] = {
    "sigmoid": Check(_elementwise(sigmoid)),
    "sigmoid_grad": Check(_elementwise(sigmoid_grad)),
    "relu": Check(_elementwise(relu)),
    "relu_grad": Check(_elementwise(relu_grad)),
    "step_function": Check(_elementwise(step_function)),
    "softmax": Check(_softmax_check),
    "losses": Check(_loss_check),
    "numerical_diff": Check(_numerical_diff_check, float64_only=True, numerical=True),
    "numerical_gradient[in-place]": Check(
        _numerical_gradient_in_place, float64_only=True, in_place=True, numerical=True
    ),
    "numerical_gradient[batched]": Check(
        _numerical_gradient_batched, float64_only=True, numerical=True
    ),
    "TwoLayerNet.gradient": Check(_backprop_check(_two_layer(50))),
    "TwoLayerNet.numerical_gradient": Check(
        _numerical_check(_two_layer(10), rows=3), float64_only=True, numerical=True
    ),
    "training[300 steps]": Check(_training_check, training=True),
    **{f"{name}[1 update]": Check(_optimizer_check(name, 1)) for name in OPTIMIZERS},
    **{
        f"{name}[300 updates]": Check(_optimizer_check(name, 300), training=True)
        for name in OPTIMIZERS
    },
    "MultiLayerNet.gradient": Check(_backprop_check(_deep)),
    "MultiLayerNet.numerical_gradient": Check(
        _numerical_check(_deep, rows=2), float64_only=True, numerical=True
    ),
    "MultiLayerNet training[300 steps, adam]": Check(_deep_training_check, training=True),
    **{name: Check(fn, **flags) for name, (fn, flags) in LAYER_CHECKS.items()},
}


def run_check(name: str, backend: Backend, reference: Backend) -> CheckResult:
    """Run one check on ``backend`` (its dtype) and on ``reference`` in float64."""
    check = CHECKS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        desired = check.fn(reference.with_dtype("float64"))
        actual = check.fn(backend)
    dtype = backend.dtype_name
    atol = numerical_atol(dtype) if check.numerical else None
    # A tie in argmax may flip one test sample: accuracies are compared within 1/200,
    # not under the value tolerance.
    acc_actual, acc_desired = actual.pop("test_acc", None), desired.pop("test_acc", None)
    result = compare(name, actual, desired, dtype, training=check.training, atol=atol)
    if acc_desired is not None:
        diff = float(np.abs(np.asarray(acc_actual) - np.asarray(acc_desired)).max())
        if diff > 1 / 200 + 1e-12:
            return replace(result, passed=False, detail=f"test_acc differs by {diff}")
    return result


def applicable(name: str, backend: Backend) -> bool:
    """Whether a check applies to this backend and dtype."""
    check = CHECKS[name]
    if check.float64_only and backend.dtype_name != "float64":
        return False
    return not (check.in_place and not backend.mutable_arrays)


def run_parity(
    backend: Backend, reference: Backend, *, checks: list[str] | None = None
) -> Iterator[CheckResult]:
    """Yield the result of every applicable check, in :data:`CHECKS` order."""
    for name in checks or list(CHECKS):
        if applicable(name, backend):
            yield run_check(name, backend, reference)

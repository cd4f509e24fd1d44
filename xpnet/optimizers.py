"""The next chapter's optimizers, written once against the array API.

Each has the book's interface, ``opt.update(params, grads)``, updating the dict in place,
and its formulas, defaults and 1e-7 epsilon placement. State (velocities, squared-gradient
sums) lives on the parameters' device and is updated in place where the library allows it;
on libraries with immutable arrays (JAX) the dict entries are replaced by new arrays.

Hyperparameters may be Python floats or arrays that broadcast over a leading model axis:
``lr`` of shape (K, 1, 1) for ``W`` of shape (K, D, H) and ``b`` of shape (K, 1, H) gives K
stacked models K learning rates with one update.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_writeable_array
from array_api_compat import device as device_of

from .backends import to_numpy

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "get_optimizer",
]

#: Inside the square root's denominator, as in the book.
EPS = 1e-7


class Optimizer:
    """Common machinery: hyperparameters, per-parameter state, state_dict.

    Subclasses name their hyperparameters in ``HYPER`` (with defaults in ``__init__``) and
    their per-parameter state in ``SLOTS`` and implement :meth:`_step`.
    """

    name = ""
    HYPER: tuple[str, ...] = ("lr",)
    SLOTS: tuple[str, ...] = ()

    def __init__(self, **hyper: Any) -> None:
        for k, v in hyper.items():
            _check_hyper(k, v)
        self.hyper = dict(hyper)
        self.iter = 0
        self.state: dict[str, dict[str, Any]] = {s: {} for s in self.SLOTS}
        self._dev_hyper: dict[str, Any] | None = None

    def __setattr__(self, key: str, value: Any) -> None:
        if key in type(self).HYPER and "hyper" in self.__dict__:  # opt.lr = ... (schedules)
            _check_hyper(key, value)
            self.hyper[key] = value
            self._dev_hyper = None  # rebuilt, on the device, at the next update
        else:
            super().__setattr__(key, value)

    def __getattr__(self, key: str) -> Any:  # opt.lr, opt.momentum as in the book
        hyper = self.__dict__.get("hyper", {})
        if key in hyper:
            return hyper[key]
        raise AttributeError(key)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({args})"

    # --- the update --------------------------------------------------------------------

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """One step: update ``params`` from ``grads`` (same keys and shapes), in place."""
        first = next(iter(params.values()))
        try:
            xp = array_namespace(first)
        except TypeError:  # Python numbers, as the book's optimizer_compare_naive.py passes
            first = _numbers_as_numpy(params)
            xp = array_namespace(first)
        if self._dev_hyper is None:
            self._dev_hyper = {k: hyper_on_device(v, first) for k, v in self.hyper.items()}
        self.iter += 1
        self.init_state(params, xp)
        grads = {k: g if type(g) is type(params[k]) else _like(g, params[k], xp)  # host values
                 for k, g in grads.items()}  # fmt: skip
        self.apply(params, grads, self.state, self._dev_hyper, self.iter,
                   in_place=is_writeable_array(first), xp=xp)  # fmt: skip

    def init_state(self, params: dict[str, Any], xp: Any = None) -> None:
        """Zero state for every parameter that has none yet (``params``' shapes)."""
        xp = array_namespace(next(iter(params.values()))) if xp is None else xp
        for slot in self.SLOTS:
            for key, p in params.items():
                if key not in self.state[slot]:
                    self.state[slot][key] = xp.zeros_like(p)

    def apply(
        self,
        params: dict[str, Any],
        grads: dict[str, Any],
        state: dict[str, dict[str, Any]],
        hyper: dict[str, Any],
        t: Any,
        *,
        in_place: bool,
        xp: Any,
    ) -> None:
        """The update as a function of its inputs: the one formula of :meth:`update` and
        of a compiled training step (:mod:`xpnet.step`).

        Parameters
        ----------
        params, grads : dict of arrays
            Same keys and shapes; ``params`` entries are updated.
        state : dict
            ``{slot: {param: array}}``, every slot filled (:meth:`init_state`); updated.
        hyper : dict
            Every name in ``HYPER``: numbers, or arrays broadcasting over the parameters.
        t : int or 0-d array
            The step count after this update (1 at the first): a number in eager use,
            an array under tracing, so one compiled step serves every count.
        in_place : bool
            Update the arrays themselves (libraries with mutable arrays, not under
            tracing); otherwise the dicts' entries are replaced by new arrays.
        xp : namespace
        """
        hp = self.step_hyper(hyper, t, xp)
        for key in params:
            self._step(key, params, grads[key], state, hp, in_place, xp)

    def step_hyper(self, hyper: dict[str, Any], t: Any, xp: Any) -> dict[str, Any]:
        """The hyperparameters of step ``t`` (the same at every step but Adam's)."""
        return hyper

    def _step(self, key, params, g, state, hp, in_place, xp) -> None:  # pragma: no cover
        raise NotImplementedError

    # --- state -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, as host NumPy arrays keyed by plain strings.

        Keys: ``iter``, one per hyperparameter, and ``SLOT.PARAM`` per state array, all
        numbers. Saves with ``np.savez`` and loads with ``allow_pickle=False``.
        """
        out: dict[str, np.ndarray] = {"iter": np.array(self.iter, dtype=np.int64)}
        for k, v in self.hyper.items():
            out[k] = np.array(v if isinstance(v, int | float) else to_numpy(v), np.float64)
        for slot, arrays in self.state.items():
            for key, a in arrays.items():  # a copy: the live state keeps changing
                out[f"{slot}.{key}"] = np.array(to_numpy(a), copy=True)
        return out

    def load_state_dict(self, state: dict[str, Any], params: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; state arrays go to ``params``' device."""
        own = {"iter", *self.HYPER}
        foreign = sorted({k.split(".")[0] for k in state} - own - set(self.SLOTS))
        missing = sorted(own - set(state))
        if foreign or missing:
            raise ValueError(
                f"this optimizer state is not a {self.name} state (it has "
                f"{', '.join(foreign) or 'no'} extra and {', '.join(missing) or 'no'} missing "
                "entries)"
            )
        first = next(iter(params.values()))
        xp = array_namespace(first)
        hyper = {}
        for k in self.HYPER:
            v = np.asarray(state[k])
            hyper[k] = float(v) if v.ndim == 0 else v
        self.hyper = hyper
        self._dev_hyper = None
        self.iter = int(np.asarray(state["iter"]))
        self.state = {s: {} for s in self.SLOTS}
        for slot in self.SLOTS:
            for key, p in params.items():
                host = state.get(f"{slot}.{key}")
                if host is None:
                    continue
                if tuple(np.shape(host)) != tuple(p.shape):
                    raise ValueError(
                        f"optimizer state {slot}.{key} has shape {np.shape(host)}, "
                        f"the parameter {tuple(p.shape)}"
                    )
                self.state[slot][key] = xp.asarray(  # a copy: updates must not reach `state`
                    np.array(host, copy=True), dtype=p.dtype, device=device_of(first)
                )


def _numbers_as_numpy(params: dict[str, Any]) -> Any:
    """Python numbers in ``params`` become NumPy float64 scalars; return the first value.

    NumPy scalars are immutable, so each update replaces them with new ones, as the
    book's own optimizers do: a history list of earlier values stays as it was.
    """
    for key, v in params.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            params[key] = np.float64(v)
    return next(iter(params.values()))


def _like(g: Any, p: Any, xp: Any) -> Any:
    """A gradient as an array of its parameter's namespace, device and dtype."""
    if hasattr(g, "__array_namespace__") and array_namespace(g) is xp:
        return g
    if not hasattr(g, "__array_namespace__") or isinstance(g, np.generic | np.ndarray):
        g = np.asarray(g)  # scalars; NumPy arrays move to p's device below
    else:
        g = to_numpy(g)
    return xp.asarray(g, dtype=p.dtype, device=device_of(p))


def iadd(d: dict[str, Any], key: str, value: Any, in_place: bool) -> None:
    """``d[key] += value``, in place where the library allows it (not JAX)."""
    if in_place:
        d[key] += value
    else:
        d[key] = d[key] + value


def isub(d: dict[str, Any], key: str, value: Any, in_place: bool) -> None:
    """``d[key] -= value``, in place where the library allows it."""
    if in_place:
        d[key] -= value
    else:
        d[key] = d[key] - value


def imul(d: dict[str, Any], key: str, factor: Any, in_place: bool) -> None:
    """``d[key] *= factor``, in place where the library allows it."""
    if in_place:
        d[key] *= factor
    else:
        d[key] = d[key] * factor


class SGD(Optimizer):
    """``p -= lr * g``."""

    name = "sgd"

    def __init__(self, lr: Any = 0.01) -> None:
        super().__init__(lr=lr)

    def _step(self, key, params, g, state, hp, in_place, xp):
        isub(params, key, hp["lr"] * g, in_place)


class Momentum(Optimizer):
    """``v = momentum * v - lr * g; p += v``."""

    name = "momentum"
    HYPER = ("lr", "momentum")
    SLOTS = ("v",)

    def __init__(self, lr: Any = 0.01, momentum: Any = 0.9) -> None:
        super().__init__(lr=lr, momentum=momentum)

    def _step(self, key, params, g, state, hp, in_place, xp):
        v = state["v"]
        imul(v, key, hp["momentum"], in_place)
        isub(v, key, hp["lr"] * g, in_place)
        iadd(params, key, v[key], in_place)


class Nesterov(Momentum):
    """The book's Nesterov: ``v = m*v - lr*g; p += m*m*v - (1 + m)*lr*g`` (Momentum's
    hyperparameters, defaults and velocity, another update)."""

    name = "nesterov"

    def _step(self, key, params, g, state, hp, in_place, xp):
        m, v = hp["momentum"], state["v"]
        lr_g = hp["lr"] * g
        imul(v, key, m, in_place)
        isub(v, key, lr_g, in_place)
        iadd(params, key, (m * m) * v[key], in_place)
        isub(params, key, (1 + m) * lr_g, in_place)


class AdaGrad(Optimizer):
    """``h += g*g; p -= lr * g / (sqrt(h) + 1e-7)``."""

    name = "adagrad"
    SLOTS = ("h",)

    def __init__(self, lr: Any = 0.01) -> None:
        super().__init__(lr=lr)

    def _step(self, key, params, g, state, hp, in_place, xp):
        h = state["h"]
        self._accumulate(h, key, g, hp, in_place)
        isub(params, key, hp["lr"] * g / (xp.sqrt(h[key]) + EPS), in_place)

    @staticmethod
    def _accumulate(h, key, g, hp, in_place):
        iadd(h, key, g * g, in_place)


class RMSprop(AdaGrad):
    """``h = decay*h + (1 - decay)*g*g; p -= lr * g / (sqrt(h) + 1e-7)``: AdaGrad whose sum
    of squared gradients forgets."""

    name = "rmsprop"
    HYPER = ("lr", "decay_rate")

    def __init__(self, lr: Any = 0.01, decay_rate: Any = 0.99) -> None:
        Optimizer.__init__(self, lr=lr, decay_rate=decay_rate)

    @staticmethod
    def _accumulate(h, key, g, hp, in_place):
        d = hp["decay_rate"]
        imul(h, key, d, in_place)
        iadd(h, key, (1 - d) * g * g, in_place)


class Adam(Optimizer):
    """The book's Adam: bias correction folded into ``lr_t``, 1e-7 outside the root."""

    name = "adam"
    HYPER = ("lr", "beta1", "beta2")
    SLOTS = ("m", "v")

    def __init__(self, lr: Any = 0.001, beta1: Any = 0.9, beta2: Any = 0.999) -> None:
        super().__init__(lr=lr, beta1=beta1, beta2=beta2)

    def step_hyper(self, hyper: dict[str, Any], t: Any, xp: Any) -> dict[str, Any]:
        # on the host when the betas and the count are numbers (eager steps)
        b1, b2 = hyper["beta1"], hyper["beta2"]
        root = math.sqrt if isinstance(b2, float) and isinstance(t, int) else xp.sqrt
        return {**hyper, "lr_t": hyper["lr"] * root(1.0 - b2**t) / (1.0 - b1**t)}

    def _step(self, key, params, g, state, hp, in_place, xp):
        b1, b2 = hp["beta1"], hp["beta2"]
        m, v = state["m"], state["v"]
        iadd(m, key, (1 - b1) * (g - m[key]), in_place)
        iadd(v, key, (1 - b2) * (g * g - v[key]), in_place)
        isub(params, key, hp["lr_t"] * m[key] / (xp.sqrt(v[key]) + EPS), in_place)


#: Optimizer names, for option lists.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    c.name: c for c in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)
}


def get_optimizer(name: str, **hyper: Any) -> Optimizer:
    """An optimizer by name (``"sgd"``, ``"momentum"``, ...), with its hyperparameters.

    Hyperparameters the optimizer does not take are an error naming those it does.
    """
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[key]
    extra = sorted(set(hyper) - set(cls.HYPER))
    if extra:
        raise ValueError(f"optimizer {key!r} takes {', '.join(cls.HYPER)}; not {', '.join(extra)}")
    return cls(**hyper)


def _check_hyper(name: str, v: Any) -> None:
    if isinstance(v, bool):
        raise ValueError(f"{name} must be a number or an array, got {v!r}")
    if isinstance(v, int | float):
        if name == "lr" and not (math.isfinite(v) and v > 0):
            raise ValueError(f"lr must be a positive finite number, got {v!r}")
        if name != "lr" and not 0 <= v < 1:
            raise ValueError(f"{name} must be in [0, 1), got {v!r}")


def hyper_on_device(v: Any, like: Any) -> Any:
    """Python numbers stay numbers (cheapest); arrays move to ``like``'s device and dtype."""
    xp = array_namespace(like)
    if isinstance(v, int | float):
        return float(v)
    if hasattr(v, "__array_namespace__") and array_namespace(v) is xp:
        return xp.astype(v, like.dtype) if v.dtype != like.dtype else v
    return xp.asarray(np.asarray(v), dtype=like.dtype, device=device_of(like))


def _short(v: Any) -> str:
    return repr(v) if isinstance(v, int | float) else f"array{tuple(np.shape(v))}"

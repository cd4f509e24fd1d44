"""The training step as one pure function, run eagerly or compiled by the backend.

:func:`make_step` builds ``step(params, state, xb, tb, hyper) -> (params, state, loss)``
from the one forward and backward pass (:func:`xpnet.mlp.loss_and_grads`) and the
optimizer's one update (:meth:`xpnet.optimizers.Optimizer.apply`). A :class:`Stepper`
holds it for a training loop: eager, updating the arrays in place where the library
allows it, or compiled once by the backend (:meth:`xpnet.Backend.compile_step`:
``jax.jit`` with donated buffers, ``torch.compile``; ``mode="reduce-overhead"``, CUDA
graphs, on CUDA), which then builds new arrays each step.

``compile="auto"`` compiles where the backend says it pays
(:attr:`xpnet.Backend.compile_pays`), decided by ``scripts/bench.py --section compile``
with the compile time counted: JAX (its eager operations are dispatched one at a time;
a jitted step took 0.2x the eager one) and nowhere else (torch on the CPU: about 8 s of
cold compile against ~20% of the step saved; torch on CUDA: not measured yet).

Every batch of a run has the same shape, so a run compiles once; each new shape (a
stack whose models were cut, another batch size) or CPU thread count (``torch.compile``
guards on it) compiles again and is counted (:attr:`Stepper.compiles`), its seconds in
:attr:`Stepper.compile_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ._array import chunk_sums, labels_of
from .evaluation import EVAL_CHUNK, set_totals
from .mlp import loss_and_grads
from .nets import MultiLayerNet
from .optimizers import SGD, Optimizer, hyper_on_device, isub

__all__ = [
    "COMPILE_FLAGS",
    "COMPILE_HELP",
    "COMPILE_MODES",
    "Stepper",
    "compile_wanted",
    "make_step",
    "net_stepper",
]

#: What ``compile=`` accepts.
COMPILE_MODES = (True, False, "auto")

#: ``--compile`` of the train and sweep commands, as ``compile=``.
COMPILE_FLAGS = {"auto": "auto", "on": True, "off": False}
COMPILE_HELP = (
    "compile the training step (jax.jit, torch.compile): auto where it was measured to "
    "pay (JAX), on (an error where the backend cannot), off"
)

StepFn = Callable[[dict, dict, Any, Any, dict], tuple[dict, dict, Any]]


def make_step(activation: str, optimizer: Optimizer, *, scale: float | None,
              in_place: bool) -> StepFn:  # fmt: skip
    """The training step of an affine-layer net as a function of its inputs.

    Parameters
    ----------
    activation : {"sigmoid", "relu"}
    optimizer : Optimizer
        Its class's update is used (not its hyperparameters or state, which are
        arguments of the step). Plain :class:`~xpnet.optimizers.SGD` is folded into the
        backward pass: ``lr`` times the gradient, one subtraction per parameter.
    scale : float, optional
        Input scale (1/255 for raw pixels).
    in_place : bool
        Update the given arrays (eager steps on mutable arrays); otherwise the step
        builds new dicts and arrays and leaves its inputs alone (a traced step).

    Returns
    -------
    step : callable
        ``step(params, state, xb, tb, hyper) -> (params, state, loss)``: ``params`` as
        :func:`xpnet.mlp.loss_and_grads` takes them (``W1`` (..., D, H) ...); ``state``
        ``{"t": count, slot: {param: array}}`` (empty for SGD); ``xb`` (..., B, D),
        ``tb`` one-hot (..., B, C); ``hyper`` the optimizer's hyperparameters and
        ``weight_decay`` (numbers or arrays, (K, 1, 1) for K stacked models); ``loss``
        (...,) before the update.
    """
    fold = type(optimizer) is SGD
    slots = optimizer.SLOTS

    def step(params: dict, state: dict, xb: Any, tb: Any, hyper: dict) -> tuple[dict, dict, Any]:
        if not in_place:  # new dicts: the caller's (or the trace's inputs) stay as they were
            params = dict(params)
            state = {k: dict(v) if isinstance(v, dict) else v for k, v in state.items()}
        wd = hyper.get("weight_decay", 0.0)
        if fold:
            loss, steps = loss_and_grads(params, xb, tb, activation, scale=scale,
                                         step=hyper["lr"], weight_decay=wd)  # fmt: skip
            for k, g in steps.items():
                isub(params, k, g, in_place)
            return params, state, loss
        loss, grads = loss_and_grads(params, xb, tb, activation, scale=scale, weight_decay=wd)
        t = state["t"] + 1
        own = {s: state[s] for s in slots}
        optimizer.apply(params, grads, own, hyper, t, in_place=in_place,
                        xp=array_namespace(params["W1"]))  # fmt: skip
        return params, {"t": t, **own}, loss

    return step


class Stepper:
    """One training step after another on a params dict and its optimizer.

    Parameters
    ----------
    backend : Backend
    activation : {"sigmoid", "relu"}
    optimizer : Optimizer
        Its hyperparameters are read at every step (schedules that set ``opt.lr`` work),
        its state and ``iter`` are kept up to date (checkpoints read them).
    scale : float, optional
        Input scale.
    compile : bool
        Compile the step with :meth:`Backend.compile_step`.
    weight_decay : float or array (K, 1, 1)
        ``lambda`` of the L2 term, unless a step is given its own.

    Attributes
    ----------
    compiled : bool
    compiles : int
        Compilations so far (one per new shape of the inputs); 0 when eager.
    compile_seconds : float
        Wall seconds of the first step of each new shape (compilation and one step,
        the device synchronized); 0 when eager.
    """

    def __init__(self, backend: Any, activation: str, optimizer: Optimizer, *,
                 scale: float | None, compile: bool = False,
                 weight_decay: Any = 0.0) -> None:  # fmt: skip
        self.backend, self.optimizer = backend, optimizer
        self.compiled = bool(compile)
        self.activation, self.scale = activation, scale
        self.weight_decay = weight_decay
        self.fold = type(optimizer) is SGD
        fn = make_step(activation, optimizer, scale=scale,
                       in_place=backend.updates_in_place(self.compiled))  # fmt: skip
        self._fn = backend.compile_step(fn) if self.compiled else fn
        self.compiles, self.compile_seconds = 0, 0.0
        self._shapes: set[tuple] = set()
        self._t: Any = None  # the step count on the device, for a compiled step
        self._t_iter: int | None = None  # the optimizer's iter that _t holds
        self._hyper: dict[str, Any] | None = None
        self._hyper_of_opt: dict[str, Any] | None = None  # the optimizer's, _hyper made from
        self._wd: tuple[Any, Any] = (None, None)
        self._count_fn: Callable[..., Any] | None = None  # correct_total's, maybe compiled
        self._count_shapes: set[tuple] = set()

    def __call__(self, params: dict[str, Any], xb: Any, tb: Any, weight_decay: Any = None) -> Any:
        """One step: ``params`` (the dict) and the optimizer are updated; the loss (...,)
        of the batch before the update stays on the device."""
        weight_decay = self.weight_decay if weight_decay is None else weight_decay
        opt, first = self.optimizer, params["W1"]
        opt.init_state(params)
        state = {s: opt.state[s] for s in opt.SLOTS}
        if not self.fold:
            state["t"] = self._count(first)
        hyper = self._hyper_of(first, weight_decay)
        key = None
        if self.compiled:
            pool = self.backend.intra_op_threads()  # torch.compile guards on its size
            key = (tuple((k, tuple(v.shape)) for k, v in params.items()), tuple(xb.shape),
                   tuple(tb.shape), str(xb.dtype), pool and pool[0]())  # fmt: skip
        start = time.perf_counter()
        if key is not None and not self._shapes:
            self._prime(params, xb, tb, hyper)
        new_params, new_state, loss = self._fn(params, state, xb, tb, hyper)
        if key is not None and key not in self._shapes:
            self.backend.synchronize()
            self._shapes.add(key)
            self.compiles += 1
            self.compile_seconds += time.perf_counter() - start
        params.update(new_params)
        if not self.fold:
            self._t = new_state.pop("t")
            opt.iter += 1
            self._t_iter = opt.iter
            opt.state.update(new_state)
        return loss

    def correct_total(self, params: dict[str, Any], x: Any, t: Any) -> Any:
        """Rows of a whole set (``t`` labels (N,) or one-hot (N, C)) whose largest logit is
        the label: :meth:`xpnet.MultiLayerNet.correct_total`'s count, with each chunk's
        forward pass compiled where the backend compiles evaluations (JAX:
        :meth:`Backend.compile_function`). The first chunk of each shape is timed into
        :attr:`compile_seconds`. A 0-d integer array on the device."""
        xp = self.backend.xp
        if self._count_fn is None:
            act, scale = self.activation, self.scale
            self._count_fn = self.backend.compile_function(  # one chunk's count, as evaluated
                lambda p, xc, lc: set_totals(p, xc, lc, act, scale=scale)[0])  # fmt: skip
        labels = labels_of(t, xp)

        def part(start: int, stop: int) -> Any:
            key, began = (stop - start, str(x.dtype)), time.perf_counter()
            c = self._count_fn(params, x[start:stop, ...], labels[start:stop])
            if self.compiled and key not in self._count_shapes:
                self.backend.synchronize()
                self._count_shapes.add(key)
                self.compile_seconds += time.perf_counter() - began
            return c

        return chunk_sums(int(x.shape[0]), EVAL_CHUNK, part)

    def _prime(self, params: dict[str, Any], xb: Any, tb: Any, hyper: dict[str, Any]) -> None:
        """One eager forward and backward pass on a row of the batch before the first
        trace: the constants the math caches (:func:`xpnet._array.scalar`) exist then, so
        the trace finds them instead of making them (torch.compile would compile again
        once its guards saw the cache grow)."""
        loss_and_grads(params, xb[..., :1, :], tb[..., :1, :], self.activation,
                       scale=self.scale, weight_decay=hyper.get("weight_decay", 0.0))  # fmt: skip

    def _count(self, like: Any) -> Any:
        """The optimizer's step count: a number eagerly; a device array, made when the
        count was set from outside (a restored state), for a compiled step."""
        opt = self.optimizer
        if not self.compiled:
            return opt.iter
        if self._t_iter != opt.iter:
            self._t = self.backend.asarray(np.asarray(opt.iter, np.float64), dtype=like.dtype)
            self._t_iter = opt.iter
        return self._t

    def _hyper_of(self, like: Any, weight_decay: Any) -> dict[str, Any]:
        """The hyperparameters on the device; for a compiled step numbers become 0-d
        arrays, so a new learning rate is a new input, not a new compilation."""
        opt = self.optimizer
        if opt._dev_hyper is None:  # as Optimizer.update builds it (a new value was set)
            opt._dev_hyper = {k: hyper_on_device(v, like) for k, v in opt.hyper.items()}
        if self._hyper_of_opt is not opt._dev_hyper:
            self._hyper_of_opt = opt._dev_hyper
            self._hyper = {k: self._input(v, like) for k, v in opt._dev_hyper.items()}
        if self._wd[0] is not weight_decay:
            zero = isinstance(weight_decay, int | float) and weight_decay == 0
            self._wd = (weight_decay, None if zero else self._input(weight_decay, like))
        wd = self._wd[1]
        return self._hyper if wd is None else {**self._hyper, "weight_decay": wd}

    def _input(self, v: Any, like: Any) -> Any:
        if self.compiled and isinstance(v, int | float):
            return self.backend.asarray(np.asarray(v, np.float64), dtype=like.dtype)
        return v


def compile_wanted(compile: Any, backend: Any, *, supported: bool = True, what: str = "") -> bool:
    """Whether to compile: ``True`` (an error where the backend or the net cannot),
    ``False``, or ``"auto"`` (where :attr:`Backend.compile_pays`)."""
    if not (compile is True or compile is False or compile == "auto"):
        raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
    if compile is True:
        if not supported:
            raise ValueError(f"compile=True: {what} trains with its own step, which is not "
                             "compiled; use compile=False or 'auto'")  # fmt: skip
        if not backend.can_compile:
            raise ValueError(
                f"compile=True: backend {backend.name!r} on {backend.device_name} cannot "
                "compile a training step (torch needs a C++ compiler on the CPU, Triton on "
                "CUDA; numpy, array_api_strict and cupy have no compiler); use "
                "compile=False or 'auto'"
            )
        return True
    return compile == "auto" and supported and backend.can_compile and backend.compile_pays


def net_stepper(net: Any, optimizer: Optimizer | None, lr: float, *, scale: float | None,
                compile: Any, numerical: bool = False) -> Stepper | None:  # fmt: skip
    """The :class:`Stepper` of an affine-layer net (:class:`xpnet.MultiLayerNet`,
    :class:`xpnet.TwoLayerNet`), or None for nets with their own step (layer nets) and
    for numerical gradients."""
    if numerical:
        if compile is True:
            raise ValueError("compile=True compiles the backprop step: use gradient='backprop'")
        return None
    own = type(net).loss_and_gradient is not MultiLayerNet.loss_and_gradient
    supported = isinstance(net, MultiLayerNet) and not own
    on = compile_wanted(compile, net.backend, supported=supported,
                        what=type(net).__name__)  # fmt: skip
    if not supported:
        return None
    return Stepper(net.backend, net.activation, optimizer or SGD(lr), scale=scale, compile=on,
                   weight_decay=net.weight_decay_lambda)  # fmt: skip

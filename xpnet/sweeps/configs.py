"""Sweep configs: the chapter's defaults, checking, a canonical key, grids and samples."""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any

import numpy as np

from .._json import config_json
from ..mlp import ACTIVATIONS
from ..nets import init_std
from ..optimizers import OPTIMIZERS, get_optimizer

#: The chapter's recipe: what a config's missing keys mean.
DEFAULTS: dict[str, Any] = {
    "lr": 0.1,
    "hidden_sizes": (50,),
    "activation": "sigmoid",
    "weight_init_std": 0.01,
    "weight_decay": 0.0,
    "optimizer": "sgd",
    "seed": 0,
}

#: Config keys :func:`sample` may draw from a (low, high) range.
_CONTINUOUS = {"lr", "weight_decay", "weight_init_std", "momentum", "beta1", "beta2",
               "decay_rate"}  # fmt: skip

_KEYS = set(DEFAULTS) | {"hidden_size"} | {h for c in OPTIMIZERS.values() for h in c.HYPER}


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """A config with the chapter's defaults filled in; unknown keys are an error."""
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    c = {**DEFAULTS, **config}
    if "hidden_size" in config:
        if "hidden_sizes" in config:
            raise ValueError("give hidden_size or hidden_sizes, not both")
        c["hidden_sizes"] = (int(config["hidden_size"]),)
        del c["hidden_size"]
    hs = c["hidden_sizes"]
    c["hidden_sizes"] = (
        (int(hs),) if isinstance(hs, int | np.integer) else tuple(int(h) for h in hs)
    )
    opt = str(c["optimizer"]).lower()
    if opt not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {c['optimizer']!r}; choose one of: {', '.join(OPTIMIZERS)}"
        )
    c["optimizer"] = opt
    hyper = {k: c[k] for k in OPTIMIZERS[opt].HYPER if k in c}
    extra = sorted(k for k in c if k in _optimizer_keys() and k not in OPTIMIZERS[opt].HYPER)
    if extra:
        raise ValueError(
            f"optimizer {opt!r} takes {', '.join(OPTIMIZERS[opt].HYPER)}; not {', '.join(extra)}"
        )
    get_optimizer(opt, **hyper)  # validates the values
    for h in OPTIMIZERS[opt].HYPER:  # the optimizer's own defaults, written out
        c.setdefault(h, _default_hyper(OPTIMIZERS[opt], h))
    if c["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {c['activation']!r}"
        )
    if not c["hidden_sizes"] or min(c["hidden_sizes"]) < 1:
        raise ValueError(f"hidden sizes must be positive integers, got {c['hidden_sizes']}")
    wd = c["weight_decay"]
    if not (_is_number(wd) and math.isfinite(wd) and wd >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {wd!r}")
    init_std(c["weight_init_std"], 1)  # a positive number or a known name, checked now
    return c


def _optimizer_keys() -> set[str]:
    return {h for cls in OPTIMIZERS.values() for h in cls.HYPER} - {"lr"}


def _default_hyper(cls: type, name: str) -> float:
    return float(inspect.signature(cls.__init__).parameters[name].default)


def config_key(config: dict[str, Any]) -> str:
    """A canonical string for a normalized config (resume matches on it)."""
    return config_json(normalize(config))


def unit_key(config: dict[str, Any]) -> str:
    """A normalized config less its seed: the unit successive halving keeps or stops."""
    return config_json({k: v for k, v in config.items() if k != "seed"})


def grid(**lists: Any) -> list[dict[str, Any]]:
    """The Cartesian product of the given values: ``grid(lr=[0.1, 1], seed=[0, 1])``.

    A value that is not a list or tuple is one fixed value.
    """
    keys = list(lists)
    values = [v if isinstance(v, list | tuple) else [v] for v in lists.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def sample(n: int, *, seed: int = 0, **space: Any) -> list[dict[str, Any]]:
    """``n`` random configs: a list is a choice; for a continuous hyperparameter (``lr``,
    ``weight_decay``, ``momentum``, ...) a ``(low, high)`` tuple of positive numbers is
    log-uniform between them (``lr=(1e-3, 1.0)``); anything else is fixed
    (``hidden_sizes=(100, 100)`` is two layers)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n)):
        c = {}
        for k, v in space.items():
            if isinstance(v, list):
                c[k] = v[int(rng.integers(len(v)))]
            elif (
                k in _CONTINUOUS
                and isinstance(v, tuple)
                and len(v) == 2
                and all(_is_number(e) for e in v)
            ):
                lo, hi = float(v[0]), float(v[1])
                if not 0 < lo <= hi:
                    raise ValueError(f"{k}: a (low, high) range needs 0 < low <= high, got {v}")
                c[k] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            else:
                c[k] = v
        out.append(c)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)

"""Checkpoints: a net's parameters, optional optimizer state and provenance in one ``.npz``.

The file is a plain NumPy ``.npz`` (a zip of ``.npy`` arrays, loaded with
``allow_pickle=False``):

- ``W1, b1, ..., Wn, bn``: the parameters of an n-layer net (TwoLayerNet has n = 2);
- ``optimizer/<name>``: one entry per optimizer-state item (arrays or scalars);
- ``meta``: a 0-d string array holding JSON: ``format``, ``xpnet_version``, ``sizes``
  (input, hidden..., output), ``activation``, ``dtype`` and whatever the writer adds
  (``dataset``, ``data_fingerprint``, ``config``, ``step``, ``seed``);
- ``activation``: the activation again as a 0-d string, for readers of the first format.

A net of the book's layers (``SimpleConvNet``, ``DeepConvNet``, ``MultiLayerNetExtend``)
stores its parameters under their own names (``W1`` of shape (FN, C, FS, FS), ``gamma1``...),
``meta["net"]`` = ``{"class", "config" (its constructor's arguments), "rng" (the dropout
generators' states)}`` and batch normalization's running statistics as ``state/<name>``, so
a resumed run draws the dropout masks an uninterrupted one would.

Files written before ``meta`` existed (parameters and ``activation`` only) still load.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from ._version import __version__
from .backends import Backend, to_numpy
from .convnets import DeepConvNet, SimpleConvNet
from .layered_nets import MultiLayerNetExtend
from .nets import MultiLayerNet, TwoLayerNet

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
]

FORMAT = 1
OPTIMIZER_PREFIX = "optimizer/"
STATE_PREFIX = "state/"
#: The nets of layers a checkpoint rebuilds by class name.
LAYER_NETS = {cls.__name__: cls for cls in (SimpleConvNet, DeepConvNet, MultiLayerNetExtend)}
_PARAM = re.compile(r"([Wb])([1-9][0-9]*)")
_LAYER_PARAM = re.compile(r"(W|b|gamma|beta)([1-9][0-9]*)")
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


class CheckpointError(ValueError):
    """A weights file that is missing, not an xpnet ``.npz``, or not usable as it is."""


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` read.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        ``W1`` (input, h1), ``b1`` (h1,), ..., ``Wn`` (h_{n-1}, output), ``bn`` (output,);
        floating point, all finite.
    optimizer_state : dict of str to numpy.ndarray
        The optimizer's flat state (0-d arrays for scalars); empty when none was saved.
    meta : dict
        Provenance as written (see the module docstring); ``{}`` for first-format files.
    path : str
        The file it was read from (used in messages).
    """

    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = "checkpoint"
    #: A layer net's batch normalization statistics (``running_mean1``...).
    state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def net_class(self) -> str:
        """The class the parameters belong to (``"MultiLayerNet"`` for the MLPs)."""
        net = self.meta.get("net")
        return str(net.get("class")) if isinstance(net, dict) else "MultiLayerNet"

    @property
    def net_config(self) -> dict[str, Any]:
        """A layer net's constructor arguments (``{}`` for the MLPs)."""
        net = self.meta.get("net")
        config = net.get("config") if isinstance(net, dict) else None
        return config if isinstance(config, dict) else {}

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input row's shape: ``(C, H, W)`` for conv nets, ``(D,)`` otherwise."""
        if self.net_class == "MultiLayerNet":
            return self.sizes[:1]
        c = self.net_config
        return tuple(int(v) for v in c.get("input_dim", [c.get("input_size", 0)]))

    @property
    def output_size(self) -> int:
        if self.net_class == "MultiLayerNet":
            return self.sizes[-1]
        return int(self.net_config.get("output_size", 0))

    @property
    def layers(self) -> int:
        """Number of affine layers n."""
        return len(self.params) // 2

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(input, hidden_1, ..., output)``."""
        ws = [self.params[f"W{i}"] for i in range(1, self.layers + 1)]
        return (int(ws[0].shape[-2]), *(int(w.shape[-1]) for w in ws))

    @property
    def activation(self) -> str:
        """The hidden layers' activation (``"sigmoid"`` for files that do not say)."""
        return str(self.meta.get("activation", "sigmoid"))

    def to_net(
        self, *, backend: Backend | str | None = None, dtype: str | None = None
    ) -> MultiLayerNet:
        """The net these parameters belong to, on ``backend``: a :class:`TwoLayerNet` for
        two layers, else a :class:`MultiLayerNet` (weight decay from the recorded config).

        Raises
        ------
        CheckpointError
            The parameters are not those of a net this version can build.
        """
        where = self.path
        if self.net_class != "MultiLayerNet":
            return self._layer_net(backend, dtype)
        if any(a.ndim != (2 if k[0] == "W" else 1) for k, a in self.params.items()):
            raise CheckpointError(
                f"{where} holds parameters with a model axis; a net needs plain W and b arrays"
            )
        config = self.meta.get("config")
        try:
            decay = float(config.get("weight_decay") or 0.0) if isinstance(config, dict) else 0.0
            if self.layers == 2:
                net = TwoLayerNet(*self.sizes, backend=backend, dtype=dtype,
                                  activation=self.activation, seed=0,
                                  weight_decay_lambda=decay)  # fmt: skip
            else:
                net = MultiLayerNet(self.sizes[0], list(self.sizes[1:-1]), self.sizes[-1],
                                    activation=self.activation, weight_decay_lambda=decay,
                                    backend=backend, dtype=dtype, seed=0)  # fmt: skip
        except (ValueError, TypeError) as exc:  # an activation or weight decay it cannot use
            raise CheckpointError(f"{where}: {exc}") from None
        net.params = {k: net.backend.asarray(v, dtype=net.dtype) for k, v in self.params.items()}
        return net

    def _layer_net(self, backend: Backend | str | None, dtype: str | None) -> Any:
        where, name = self.path, self.net_class
        if name not in LAYER_NETS:
            raise CheckpointError(f"{where} holds a {name}, a net this version does not know "
                                  f"({', '.join(LAYER_NETS)})")  # fmt: skip
        try:
            net = LAYER_NETS[name](**self.net_config, backend=backend, dtype=dtype, seed=0)
        except (ValueError, TypeError) as exc:  # edited or foreign constructor arguments
            raise CheckpointError(
                f"{where}: its {name} settings do not build a net ({exc})"
            ) from None
        missing = sorted(set(net.params) - set(self.params))
        extra = sorted(set(self.params) - set(net.params))
        wrong = [f"{k} is {self.params[k].shape}, the net's {tuple(net.params[k].shape)}"
                 for k in net.params if k in self.params
                 and self.params[k].shape != tuple(net.params[k].shape)]  # fmt: skip
        if missing or extra or wrong:
            what = [f"lacks {', '.join(missing)}"] if missing else []
            what += [f"has no place for {', '.join(extra)}"] if extra else []
            raise CheckpointError(f"{where} does not fit its {name}: {'; '.join(what + wrong)}")
        net.params = {k: net.backend.asarray(self.params[k], dtype=net.dtype) for k in net.params}
        try:
            net.set_training_state({**self.state, "rng": self.meta["net"].get("rng", [])})
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(
                f"{where}: its dropout generator states are unusable ({exc})"
            ) from None
        return net


def save_checkpoint(
    path: str | os.PathLike[str],
    net: Any,
    *,
    optimizer_state: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``net.params``, an optimizer state and provenance to ``path``, atomically.

    Parameters
    ----------
    path : path-like
        The ``.npz`` to write; an existing file is replaced only once the new one is complete.
    net : object with ``params``
        ``params`` is a dict ``W1, b1, ..., Wn, bn`` of arrays of any backend.
    optimizer_state : dict of str to array or scalar, optional
        Stored under ``optimizer/<key>``; numeric values only (no objects, no pickle).
    meta : dict, optional
        JSON-serialisable provenance (dataset, data fingerprint, config, step, seed...);
        ``format``, ``xpnet_version``, ``sizes``, ``activation`` and ``dtype`` are added.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    params = {k: to_numpy(v) for k, v in net.params.items()}
    layered = type(net).__name__ in LAYER_NETS
    ckpt = Checkpoint(params, meta={"activation": getattr(net, "activation", "sigmoid")})
    info: dict[str, Any] = {"format": FORMAT, "xpnet_version": __version__}
    arrays: dict[str, np.ndarray] = dict(params)
    if layered:
        state = net.training_state()
        info["net"] = {"class": type(net).__name__, "config": net.config, "rng": state.pop("rng")}
        arrays.update({STATE_PREFIX + k: to_numpy(v) for k, v in state.items()})
        info["activation"] = net.config.get("activation", "relu")
    else:
        _check_params(path, params, finite=False)  # a diverged run may still be saved
        info.update(sizes=list(ckpt.sizes), activation=ckpt.activation)
    for key, value in (optimizer_state or {}).items():
        host = to_numpy(value) if not isinstance(value, int | float) else np.asarray(value)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"optimizer state {key!r} has dtype {host.dtype}; numbers only")
        arrays[OPTIMIZER_PREFIX + key] = host
    info.update(dtype=str(params["W1"].dtype), **(meta or {}))
    arrays["meta"] = np.array(json.dumps(info))
    arrays["activation"] = np.array(info["activation"])
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint` or :func:`save_weights`.

    Raises
    ------
    CheckpointError
        One line naming the file and what is wrong: missing, a directory, not a ``.npz``
        (a text file, a single ``.npy`` array), Python objects inside, missing or
        inconsistent parameters, or non-finite weights.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give the .npz weights file inside it")
    if not path.exists():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror})") from None
    if head.startswith(_NPY_MAGIC):
        raise CheckpointError(
            f"{path} holds a single array (.npy), not named parameters; it is not a weights file"
        )
    if not head.startswith(_ZIP_MAGIC):
        kind = "a text file" if _looks_like_text(path) else "not a zip archive"
        raise CheckpointError(f"{path} is {kind}, not an .npz weights file")
    try:
        # own the handle: np.load leaks it when the archive is damaged
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(
                f"{path} holds Python objects, not plain arrays; xpnet never loads those"
            ) from None
        raise CheckpointError(f"{path} is not a readable .npz weights file ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path} is a damaged .npz file ({exc})") from None
    meta: dict[str, Any] = {}
    if "meta" in arrays:
        try:
            meta = json.loads(str(arrays.pop("meta")))
        except ValueError:
            raise CheckpointError(f"{path}: its 'meta' entry is not JSON") from None
        if not isinstance(meta, dict):
            raise CheckpointError(f"{path}: its 'meta' entry is not a JSON object")
    if "activation" in arrays:
        meta.setdefault("activation", str(arrays.pop("activation")))
    optimizer = {
        k[len(OPTIMIZER_PREFIX) :]: arrays.pop(k)
        for k in list(arrays)
        if k.startswith(OPTIMIZER_PREFIX)
    }
    state = {k[len(STATE_PREFIX) :]: arrays.pop(k) for k in list(arrays)
             if k.startswith(STATE_PREFIX)}  # fmt: skip
    if isinstance(meta.get("net"), dict):
        params = {k: v for k, v in arrays.items() if _LAYER_PARAM.fullmatch(k)}
        _check_floats(path, {**params, **state})
    else:
        params = {k: v for k, v in arrays.items() if _PARAM.fullmatch(k)}
        _check_params(path, params)
    return Checkpoint(params, optimizer, meta, path=str(path), state=state)


def _check_params(path: Path, params: dict[str, np.ndarray], *, finite: bool = True) -> None:
    n = len(params) // 2
    expected = [f"{c}{i}" for i in range(1, max(n, 1) + 1) for c in "Wb"]
    missing = [k for k in expected if k not in params]
    if missing or len(params) != len(expected):
        raise CheckpointError(
            f"{path} lacks {', '.join(missing) or 'a matching W/b pair'}; an xpnet weights "
            "file holds W1, b1, ..., Wn, bn"
        )
    _check_floats(path, params, finite=False)
    ok, width = True, None
    for i in range(1, n + 1):
        w, b = params[f"W{i}"], params[f"b{i}"]
        ok &= w.ndim >= 2 and b.ndim >= 1 and b.shape[-1] == w.shape[-1]
        ok &= width is None or (w.ndim >= 2 and w.shape[-2] == width)
        width = w.shape[-1] if w.ndim >= 2 else None
    if not ok:
        shapes = ", ".join(f"{k} {params[k].shape}" for k in expected)
        raise CheckpointError(f"{path}: layer shapes do not chain ({shapes})")
    if finite:
        _check_floats(path, params)


def _check_floats(path: Path, arrays: dict[str, np.ndarray], *, finite: bool = True) -> None:
    if not arrays:
        raise CheckpointError(f"{path} holds no parameters; it is not an xpnet weights file")
    for k, a in arrays.items():
        if not np.issubdtype(a.dtype, np.floating):
            raise CheckpointError(f"{path}: {k} has dtype {a.dtype}; parameters are floats")
        bad = int(np.count_nonzero(~np.isfinite(a))) if finite else 0
        if bad:
            raise CheckpointError(
                f"{path}: {k} holds {bad} NaN/inf values of {a.size}; the run that "
                "wrote it diverged, retrain with a smaller learning rate"
            )


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def save_weights(net: TwoLayerNet, path: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``net.params`` (and its activation) to ``path`` as ``.npz``, atomically.

    ``meta`` keywords (dataset, config...) are recorded as provenance; see
    :func:`save_checkpoint`.
    """
    return save_checkpoint(path, net, meta=meta)


def load_weights(
    path: str | os.PathLike[str],
    *,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    input_size: int | None = None,
    output_size: int | None = None,
) -> TwoLayerNet:
    """Build a :class:`TwoLayerNet` from a file written by :func:`save_weights`.

    Parameters
    ----------
    path : path-like
    backend, dtype : optional
        Where the net lives, as for :class:`TwoLayerNet`.
    input_size, output_size : int, optional
        Expected sizes (784 and 10 for MNIST); a mismatch is an error.

    Raises
    ------
    CheckpointError
        One line naming the file and what is wrong with it.
    """
    ckpt = load_checkpoint(path)
    for name, want, got in (
        ("input", input_size, math.prod(ckpt.input_shape)),
        ("output", output_size, ckpt.output_size),
    ):
        if want is not None and want != got:
            raise CheckpointError(f"{path}: {name} size is {got}, but the data needs {want}")
    return ckpt.to_net(backend=backend, dtype=dtype)

"""What the sweep tests share: the data, the steps, the configs and each config's own
train() run, computed once per backend and reused by every test that compares with it."""

from __future__ import annotations

from _data import blobs

import xpnet
from xpnet import sweeps as sweep_module
from xpnet.sweeps import grid


def blobs_for_sweeps(n, seed=0, d=32, classes=10):
    return blobs(n, seed=seed, d=d, classes=classes, noise=70)


KW = {"iters": 40, "batch_size": 25, "eval_interval": 12}


#: Reference train() runs by (backend, device, dtype, config, options): the core test and
#: the halving test compare with the same 14 runs, which are slow to dispatch on JAX.
_REFS: dict[tuple, tuple] = {}


def alone(config, data, backend, **options):
    """What train() records for ``config`` alone on ``backend`` (cached); ``options``
    replace :data:`KW` entries or add train() keywords (validation, patience)."""
    return alone_run(config, data, backend, **options)[0]


def alone_run(config, data, backend, **options):
    """``(history, params, optimizer state)`` of ``config``'s own train() run, host
    arrays (cached)."""
    key = (backend.name, str(backend.device), backend.dtype_name,
           sweep_module.config_key(config), id(data), tuple(sorted(options.items())))  # fmt: skip
    if key not in _REFS:
        _REFS[key] = _trainalone(config, data, backend, {**KW, **options})
    return _REFS[key]


def _trainalone(config, data, backend, kw):
    c = sweep_module.normalize(config)
    net = xpnet.MultiLayerNet(
        int(data[0].shape[1]),
        list(c["hidden_sizes"]),
        10,
        activation=c["activation"],
        weight_init_std=c["weight_init_std"],
        weight_decay_lambda=c["weight_decay"],
        backend=backend,
        seed=c["seed"],
    )
    hyper = {h: c[h] for h in xpnet.optimizers.OPTIMIZERS[c["optimizer"]].HYPER}
    opt = xpnet.get_optimizer(c["optimizer"], **hyper)
    history = xpnet.train(net, *data, seed=c["seed"], optimizer=opt, **kw)
    params = {k: xpnet.to_numpy(v) for k, v in net.params.items()}
    return history, params, opt.state_dict()


CONFIGS = (
    grid(lr=[0.3, 1.0], seed=[0, 1], weight_decay=[0.0, 0.01])
    + grid(
        optimizer="adam",
        lr=[0.01, 0.003],
        beta1=[0.9, 0.8],
        hidden_sizes=[(12, 8)],
        activation="relu",
        weight_init_std="he",
    )
    + grid(optimizer="momentum", lr=0.05, momentum=[0.5, 0.9], seed=3)
)


#: Early stopping on a quarter of the training rows held out: patience 2 stops some
#: configs of every optimizer kind at different evaluations and lets others run to the end.
EARLY_KW = {"validation": 0.25, "patience": 2}

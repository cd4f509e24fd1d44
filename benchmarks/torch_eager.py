"""The chapter's recipe in plain PyTorch eager, float32, with hand-written backprop.

What a PyTorch user would write by hand for the same network: the comparison row that says
whether xpnet's array-API layer costs anything over the framework it runs on.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import xpnet
from xpnet.evaluation import EVAL_CHUNK  # evaluate in the chunks xpnet uses

from . import BATCH, HIDDEN, INPUT, LR, OUTPUT


def train(
    device: str,
    x_train: np.ndarray,
    t_train: np.ndarray,
    x_test: np.ndarray,
    t_test: np.ndarray,
    iters: int,
    seed: int = 0,
) -> tuple[float, list[float], list[float], float]:
    """The recipe in PyTorch eager: xpnet's initial weights, batches and evaluations.

    Images stay uint8 on the device and are scaled per batch; losses stay on the device
    until each evaluation, as in ``xpnet.train``. Returns (loop seconds, train and test
    accuracies at each evaluation, final test accuracy).
    """
    import torch

    init = xpnet.TwoLayerNet(
        INPUT, HIDDEN, OUTPUT, backend=xpnet.get_backend("numpy", "cpu"), seed=seed
    )
    dev = torch.device(device)
    p = {k: torch.as_tensor(np.asarray(v, np.float32), device=dev) for k, v in init.params.items()}
    x_dev = torch.as_tensor(x_train, device=dev)
    t_dev = torch.as_tensor(t_train, device=dev).long()
    test = (torch.as_tensor(x_test, device=dev), torch.as_tensor(t_test, device=dev).long())
    n = x_train.shape[0]
    interval = max(n // BATCH, 1)
    rng = np.random.default_rng(seed)
    losses, pending, train_acc, test_acc = [], [], [], []
    arange = torch.arange(BATCH, device=dev)

    def accuracy(x, t):
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        for s in range(0, x.shape[0], EVAL_CHUNK):
            xc = x[s : s + EVAL_CHUNK].float().mul_(1.0 / 255.0)
            a2 = torch.addmm(p["b2"], torch.sigmoid(torch.addmm(p["b1"], xc, p["W1"])), p["W2"])
            correct += (a2.argmax(dim=1) == t[s : s + EVAL_CHUNK]).sum()
        return correct.item() / x.shape[0]

    sync_torch(dev)
    start = time.perf_counter()
    with torch.no_grad():
        step = 0
        while step < iters:
            chunk = min(interval - step % interval, iters - step)
            idx = torch.as_tensor(rng.integers(0, n, size=(chunk, BATCH)), device=dev)
            for i in range(chunk):
                rows = idx[i]
                x = x_dev.index_select(0, rows).float().mul_(1.0 / 255.0)
                t = t_dev.index_select(0, rows)
                a1 = torch.addmm(p["b1"], x, p["W1"])
                z1 = torch.sigmoid(a1)
                a2 = torch.addmm(p["b2"], z1, p["W2"])
                logp = torch.log_softmax(a2, dim=1)
                pending.append(-logp.gather(1, t[:, None]).mean())
                dy = logp.exp_()
                dy[arange, t] -= 1.0
                dy /= BATCH
                gw2, gb2 = torch.mm(z1.T, dy), dy.sum(0)
                da1 = torch.mm(dy, p["W2"].T).mul_(z1 * (1.0 - z1))
                gw1, gb1 = torch.mm(x.T, da1), da1.sum(0)
                for k, g in (("W1", gw1), ("b1", gb1), ("W2", gw2), ("b2", gb2)):
                    p[k].sub_(g, alpha=LR)
                if (step + i) % interval == 0:
                    losses.extend(torch.stack(pending).cpu().tolist())
                    pending.clear()
                    train_acc.append(accuracy(x_dev, t_dev))
                    test_acc.append(accuracy(*test))
            step += chunk
        if pending:
            losses.extend(torch.stack(pending).cpu().tolist())
    sync_torch(dev)
    seconds = time.perf_counter() - start
    return seconds, train_acc, test_acc, accuracy(*test)


def sync_torch(dev: Any) -> None:
    """Wait for ``dev``'s queued work (CUDA); nothing to wait for on the CPU."""
    if dev.type == "cuda":
        import torch

        torch.cuda.synchronize(dev)

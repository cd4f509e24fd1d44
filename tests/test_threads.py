"""CPU thread choices: threadpoolctl optional, GPU backends untouched, torch's own pool."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import xpnet
from xpnet import _threads


@pytest.fixture
def pools(monkeypatch):
    """Fresh bookkeeping of library pools, and no user thread variables."""
    monkeypatch.setattr(_threads, "_POOL_LEFT", {})
    monkeypatch.setattr(_threads, "_POOL_OWNED", set())
    for var in _threads._USER_VARS:
        monkeypatch.delenv(var, raising=False)


class _Pool:
    def __init__(self, n):
        self.n, self.seen = n, []

    def get(self):
        return self.n

    def set(self, n):
        self.seen.append(n)
        self.n = n


def _backend(pool=None, on_cpu=True):
    threads = (pool.get, pool.set) if pool else None
    return types.SimpleNamespace(on_cpu=on_cpu, intra_op_threads=lambda: threads)


def test_a_library_pool_follows_the_blas_choice_and_is_restored(pools):
    pool = _Pool(4)
    with _threads.blas_threads(1.0, _backend(pool)) as n:  # small work: one thread
        assert n == 1 and pool.n == 1
        with _threads.blas_threads(1.0, _backend(pool)):  # nested: nothing more to do
            assert pool.n == 1
        assert pool.n == 1
    assert pool.n == 4 and pool.seen == [1, 4]


def test_a_count_set_by_its_owner_wins(pools):
    pool = _Pool(4)
    with _threads.blas_threads(1.0, _backend(pool)):
        pass
    pool.n = 3  # torch.set_num_threads(3) between two epochs
    for _ in range(2):
        with _threads.blas_threads(1.0, _backend(pool)) as n:
            assert pool.n == 3 and n <= 3
    assert pool.seen == [1, 4]


def test_thread_variables_of_the_user_win(pools, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    pool = _Pool(4)
    with _threads.blas_threads(1.0, _backend(pool)) as n:
        assert n is None and pool.n == 4


def test_a_gpu_backend_changes_no_thread_and_imports_no_threadpoolctl(pools, monkeypatch):
    def no_controller():
        raise AssertionError("threadpoolctl asked for a GPU backend")

    monkeypatch.setattr(_threads, "_controller", no_controller)
    pool = _Pool(4)
    with _threads.blas_threads(1.0, _backend(pool, on_cpu=False)) as n:
        assert n is None and pool.n == 4


def test_without_threadpoolctl_everything_runs(pools, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails, as uninstalled
    _threads._controller.cache_clear()
    try:
        assert _threads.limit_blas_threads(1) is None
        with _threads.blas_threads(1.0) as n:
            assert n == 1
        rng = np.random.default_rng(0)
        net = xpnet.TwoLayerNet(6, 4, 3, backend="numpy", seed=0)
        h = xpnet.train(net, rng.standard_normal((40, 6)), rng.integers(0, 3, 40), iters=5,
                        batch_size=10)  # fmt: skip
        assert len(h.loss) == 5
    finally:
        _threads._controller.cache_clear()  # the next caller finds threadpoolctl again


def test_torch_intra_op_threads_follow_the_choice_inside_train(pools, monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(_threads, "_others_load", lambda: 64.0)  # every core taken
        seen = []
        b = xpnet.get_backend("torch", "cpu")
        rng = np.random.default_rng(0)
        net = xpnet.TwoLayerNet(6, 4, 3, backend=b, seed=0)
        x, t = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
        xpnet.train(net, x, t, iters=8, batch_size=10,
                    on_epoch=lambda h: seen.append(torch.get_num_threads()))  # fmt: skip
        assert seen == [1, 1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

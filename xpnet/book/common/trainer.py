"""The book's ``common.trainer``: xpnet's :class:`~xpnet.Trainer`, batches as the book's.

Each step's batch is ``np.random.choice(train_size, batch_size)`` from NumPy's global
generator, as in the book's ``train_step``, so ``np.random.seed`` repeats the book's own
run's batches.
"""

from __future__ import annotations

import numpy as np  # the book's `from common.trainer import *` brings `np` too
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ... import Trainer as _Trainer

__all__ = ["Trainer", "np"]


class Trainer(_Trainer):
    """``Trainer(network, x_train, t_train, x_test, t_test, epochs=20,
    mini_batch_size=100, optimizer='SGD', optimizer_param={'lr': 0.01},
    evaluate_sample_num_per_epoch=None, verbose=True)``, the book's signature."""

    def train(self) -> None:
        xp = array_namespace(self.x_train)
        dev = device_of(self.x_train)
        for _ in range(self.current_iter, self.max_iter):
            rows = np.random.choice(self.train_size, self.batch_size)  # noqa: NPY002
            self.train_step(xp.asarray(rows, device=dev))
        self._flush()
        self.test_acc = float(self.network.accuracy(self.x_test, self.t_test))
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(self.test_acc))

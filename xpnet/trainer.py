"""The book's ``Trainer`` and ``shuffle_dataset``, on xpnet's optimizers and host RNG.

Batches are drawn on the host from ``numpy.random.default_rng(seed)`` (with replacement,
as the book's ``np.random.choice``), so every backend sees the same batches. Per-step
losses stay where the network computed them and are read back once per epoch, with the
accuracies; ``verbose`` prints them then.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ._threads import blas_threads
from .backends import to_numpy
from .batches import batch_chunks
from .optimizers import get_optimizer

__all__ = ["Trainer", "shuffle_dataset"]


def shuffle_dataset(x: Any, t: Any, seed: int | None = None) -> tuple[Any, Any]:
    """``x`` and ``t`` with their rows in one random order (drawn on the host).

    Parameters
    ----------
    x : array (N, ...)
    t : array (N,) or (N, C)
    seed : int, optional
        Seed of ``numpy.random.default_rng``; None draws fresh entropy.

    Returns
    -------
    (x, t) : new arrays of the inputs' library, on their device
    """
    n = int(x.shape[0])
    if int(t.shape[0]) != n:
        raise ValueError(f"x has {n} rows but t has {t.shape[0]}")
    perm = np.random.default_rng(seed).permutation(n)
    return _rows(x, perm), _rows(t, perm)


def _rows(a: Any, rows: Any) -> Any:
    """``a[rows]`` for host (NumPy) ``rows`` and ``a`` of any library."""
    xp = array_namespace(a)
    return xp.take(a, xp.asarray(rows, device=device_of(a)), axis=0)


class Trainer:
    """Mini-batch training with evaluation once per epoch, as the book's ``Trainer``.

    Parameters
    ----------
    network
        A net with ``params``, ``gradient(x, t)``, ``loss(x, t)`` and
        ``accuracy(x, t)``: one of xpnet's nets or one built as the book builds them.
    x_train, t_train, x_test, t_test : arrays
        Host or device arrays; an xpnet net's data goes to its device once.
    epochs : int
    mini_batch_size : int
    optimizer : str
        ``SGD``, ``Momentum``, ``Nesterov``, ``AdaGrad``, ``RMSprop`` or ``Adam`` (any case).
    optimizer_param : dict
        Its hyperparameters (``{"lr": 0.01}``).
    evaluate_sample_num_per_epoch : int, optional
        Evaluate on the first this-many train and test rows (all when None).
    verbose : bool
        Print each step's loss and each epoch's accuracies (once per epoch).
    seed : int, optional
        Seed of the host RNG that draws the batches.

    Attributes
    ----------
    train_loss_list : list of float
        The loss of every step's batch. For nets with ``loss_and_gradient`` (xpnet's),
        the loss of the forward pass the gradient came from (before the update, as
        :func:`xpnet.train` records it), which saves a forward pass per step; for other
        nets, ``network.loss`` after the update, as the book's.
    train_acc_list, test_acc_list : list of float
        One entry per evaluation: after steps 0, ``iter_per_epoch``, ... (the book's
        ``current_iter % iter_per_epoch == 0``).
    test_acc : float or None
        The accuracy on the whole test set after :meth:`train`.
    """

    def __init__(
        self,
        network: Any,
        x_train: Any,
        t_train: Any,
        x_test: Any,
        t_test: Any,
        epochs: int = 20,
        mini_batch_size: int = 100,
        optimizer: str = "SGD",
        optimizer_param: dict[str, Any] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
        *,
        seed: int | None = 0,
    ) -> None:
        if int(mini_batch_size) != mini_batch_size or mini_batch_size < 1:
            raise ValueError(
                f"mini_batch_size must be a positive integer, got {mini_batch_size!r}"
            )
        if int(x_train.shape[0]) != int(t_train.shape[0]) or int(x_train.shape[0]) == 0:
            raise ValueError(
                f"x_train ({x_train.shape[0]} rows) and t_train ({t_train.shape[0]} rows) must "
                "hold the same, non-zero number of rows"
            )
        self.network = network
        self.verbose = verbose
        backend = getattr(network, "backend", None)
        move = backend.asarray if backend is not None else (lambda a: a)
        self.x_train, self.t_train = move(x_train), move(t_train)
        self.x_test, self.t_test = move(x_test), move(t_test)
        self.epochs = epochs
        self.batch_size = int(mini_batch_size)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
        self.optimizer = get_optimizer(optimizer, **params)
        self.seed = seed
        self.train_size = int(x_train.shape[0])
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list[float] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []
        self.test_acc: float | None = None
        self._pending: list[Any] = []

    def train_step(self, rows: Any) -> None:
        """One step on the training rows ``rows`` (an integer array of the data's library)."""
        net = self.network
        xp = array_namespace(self.x_train)
        x_batch = xp.take(self.x_train, rows, axis=0)
        t_batch = xp.take(self.t_train, rows, axis=0)
        if hasattr(net, "loss_and_gradient"):
            loss, grads = net.loss_and_gradient(x_batch, t_batch)
            self.optimizer.update(net.params, grads)
        else:
            grads = net.gradient(x_batch, t_batch)
            self.optimizer.update(net.params, grads)
            loss = net.loss(x_batch, t_batch)
        self._pending.append(loss)
        if self.current_iter % self.iter_per_epoch == 0:
            self._evaluate()
        self.current_iter += 1

    def train(self) -> None:
        """All ``max_iter`` steps, then the accuracy on the whole test set."""
        xp = array_namespace(self.x_train)
        dev = device_of(self.x_train)
        interval = max(int(self.iter_per_epoch), 1)
        for _, rows in batch_chunks(self.seed, self.train_size, self.batch_size, interval,
                                    self.max_iter, self.current_iter):  # fmt: skip
            rows_dev = xp.asarray(rows, device=dev)
            # an epoch's threads chosen for the machine's load, as xpnet.train's
            with blas_threads(backend=getattr(self.network, "backend", None)):
                for i in range(int(rows.shape[0])):
                    self.train_step(rows_dev[i, ...])
        self._flush()
        self.test_acc = float(self.network.accuracy(self.x_test, self.t_test))
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(self.test_acc))

    def _evaluate(self) -> None:
        self._flush()
        self.current_epoch += 1
        x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
        n = self.evaluate_sample_num_per_epoch
        if n is not None:
            x_tr, t_tr, x_te, t_te = x_tr[:n, ...], t_tr[:n, ...], x_te[:n, ...], t_te[:n, ...]
        train_acc = float(self.network.accuracy(x_tr, t_tr))
        test_acc = float(self.network.accuracy(x_te, t_te))
        self.train_acc_list.append(train_acc)
        self.test_acc_list.append(test_acc)
        if self.verbose:
            epoch = self.current_epoch
            print(f"=== epoch:{epoch}, train acc:{train_acc}, test acc:{test_acc} ===")

    def _flush(self) -> None:
        """The one read-back of the losses since the last evaluation."""
        if not self._pending:
            return
        values = [float(v) for v in np.reshape(to_numpy(self._pending), (-1,))]
        self._pending.clear()
        self.train_loss_list.extend(values)
        if self.verbose:
            for v in values:
                print("train loss:" + str(v))

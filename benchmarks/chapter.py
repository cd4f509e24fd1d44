"""The chapter's code as the book writes it: common/functions.py, gradient_2d.py,
two_layer_net.py and train_neuralnet.py, in NumPy.

Copied as written, so the benchmark's baseline is what a reader of the chapter would run,
and so the tests have an oracle written independently of xpnet (this module imports
nothing but NumPy). Two departures, both marked: ``TwoLayerNet`` takes an optional ``rng``
in place of the global ``np.random`` state, and :func:`train` returns its loop time. The
chapter's text shows ``cross_entropy_error`` for one sample, ``-sum(t * log(y + 1e-7))``;
two_layer_net.py imports the book's batch version (mean over rows), used here.
"""

from __future__ import annotations

import time

import numpy as np

from . import BATCH, HIDDEN, INPUT, LR, OUTPUT


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:  # one-hot targets: the index of the correct label
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def _numerical_gradient_no_batch(f, x):
    h = 1e-4  # 0.0001
    grad = np.zeros_like(x)

    for idx in range(x.size):
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)  # f(x+h)

        x[idx] = tmp_val - h
        fxh2 = f(x)  # f(x-h)
        grad[idx] = (fxh1 - fxh2) / (2 * h)

        x[idx] = tmp_val

    return grad


def numerical_gradient(f, X):
    if X.ndim == 1:
        return _numerical_gradient_no_batch(f, X)
    else:
        grad = np.zeros_like(X)

        for idx, x in enumerate(X):
            grad[idx] = _numerical_gradient_no_batch(f, x)

        return grad


class TwoLayerNet:
    """The chapter's ``TwoLayerNet``; ``rng`` replaces the global ``np.random`` state."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, rng=None):
        rng = np.random if rng is None else rng
        self.params = {}
        self.params["W1"] = weight_init_std * rng.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = weight_init_std * rng.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]

        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)

        return y

    def loss(self, x, t):
        y = self.predict(x)

        return cross_entropy_error(y, t)

    def accuracy(self, x, t):
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        t = np.argmax(t, axis=1)

        accuracy = np.sum(y == t) / float(x.shape[0])
        return accuracy

    def numerical_gradient(self, x, t):
        loss_W = lambda W: self.loss(x, t)  # noqa: E731, N803

        grads = {}
        grads["W1"] = numerical_gradient(loss_W, self.params["W1"])
        grads["b1"] = numerical_gradient(loss_W, self.params["b1"])
        grads["W2"] = numerical_gradient(loss_W, self.params["W2"])
        grads["b2"] = numerical_gradient(loss_W, self.params["b2"])

        return grads

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        grads = {}

        batch_num = x.shape[0]

        # forward
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)

        # backward
        dy = (y - t) / batch_num
        grads["W2"] = np.dot(z1.T, dy)
        grads["b2"] = np.sum(dy, axis=0)

        dz1 = np.dot(dy, W2.T)
        da1 = sigmoid_grad(a1) * dz1
        grads["W1"] = np.dot(x.T, da1)
        grads["b1"] = np.sum(da1, axis=0)

        return grads


def train(x_train, t_train, x_test, t_test, iters_num, seed=0):
    """train_neuralnet.py without the plot; returns (network, loop seconds, accuracies)."""
    rng = np.random.RandomState(seed)  # the legacy generator behind np.random.*
    network = TwoLayerNet(input_size=INPUT, hidden_size=HIDDEN, output_size=OUTPUT, rng=rng)
    train_size = x_train.shape[0]
    batch_size = BATCH
    learning_rate = LR
    train_loss_list, train_acc_list, test_acc_list = [], [], []
    iter_per_epoch = max(train_size / batch_size, 1)

    start = time.perf_counter()
    for i in range(iters_num):
        batch_mask = rng.choice(train_size, batch_size)
        x_batch = x_train[batch_mask]
        t_batch = t_train[batch_mask]

        grad = network.gradient(x_batch, t_batch)

        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= learning_rate * grad[key]

        loss = network.loss(x_batch, t_batch)
        train_loss_list.append(loss)

        if i % iter_per_epoch == 0:
            train_acc = network.accuracy(x_train, t_train)
            test_acc = network.accuracy(x_test, t_test)
            train_acc_list.append(train_acc)
            test_acc_list.append(test_acc)
    seconds = time.perf_counter() - start
    return network, seconds, train_acc_list, test_acc_list

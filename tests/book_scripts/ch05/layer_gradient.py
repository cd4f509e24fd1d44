# coding: utf-8
import os
import sys

sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from tiny_net import TinyNet

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
x_train, t_train = x_train[:200, ::16], t_train[:200]  # every 16th pixel: a quick check

network = TinyNet(input_size=49, hidden_size=4, output_size=10)

grad_numerical = network.numerical_gradient(x_train[:2], t_train[:2])
grad_backprop = network.gradient(x_train[:2], t_train[:2])
for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print("diff " + key + ":" + str(diff))

loss_before = network.loss(x_train, t_train)
for i in range(100):
    batch_mask = np.random.choice(200, 20)
    grad = network.gradient(x_train[batch_mask], t_train[batch_mask])
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= 2.0 * grad[key]
print("loss before:" + str(loss_before))
print("loss after:" + str(network.loss(x_train, t_train)))
print("accuracy:" + str(network.accuracy(x_train, t_train)))
print("local module from:" + os.path.basename(os.path.dirname(sys.modules["tiny_net"].__file__)))

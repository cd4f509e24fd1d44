# coding: utf-8
import os
import sys

sys.path.append(os.pardir)
from collections import OrderedDict

import matplotlib.pyplot as plt
from common.optimizer import *
from common.util import smooth_curve


def df(x, y):
    return x / 10.0, 2.0 * y


params = {}
grads = {}
optimizers = OrderedDict()
optimizers["SGD"] = SGD(lr=0.95)
optimizers["Momentum"] = Momentum(lr=0.1)
optimizers["AdaGrad"] = AdaGrad(lr=1.5)
optimizers["Adam"] = Adam(lr=0.3)
optimizers["RMSprop"] = RMSprop(lr=0.3)
optimizers["Nesterov"] = Nesterov(lr=0.1)

for idx, key in enumerate(optimizers, start=1):
    optimizer = optimizers[key]
    params["x"], params["y"] = -7.0, 2.0
    x_history = []
    for i in range(30):
        x_history.append(params["x"])
        grads["x"], grads["y"] = df(params["x"], params["y"])
        optimizer.update(params, grads)
    print(key + ":" + str(float(params["x"])) + "," + str(float(params["y"])))
    print(key + " first:" + str(x_history[0]) + "," + str(float(x_history[1])))
    plt.subplot(2, 3, idx)
    plt.plot(np.arange(30), smooth_curve(x_history))
    plt.title(key)
plt.show()

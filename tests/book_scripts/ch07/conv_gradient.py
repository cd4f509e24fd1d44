# coding: utf-8
import numpy as np
from common.util import col2im, conv_output_size, im2col
from tiny_convnet import TinyConvNet

network = TinyConvNet()
X = np.random.rand(36).reshape((1, 1, 6, 6))
T = np.array([1]).reshape((1, 1))

grad_num = network.numerical_gradient(X, T)
grad = network.gradient(X, T)
for key, val in grad_num.items():
    print(key, np.abs(grad_num[key] - grad[key]).mean())

col = im2col(X, 3, 3, stride=1, pad=1)
print("im2col:" + str(col.shape))
print("col2im:" + str(col2im(col, X.shape, 3, 3, stride=1, pad=1).shape))
print("conv_output_size:" + str(conv_output_size(6, 3, 1, 1)))

# coding: utf-8
import os
import sys

sys.path.append(os.pardir)
import numpy as np
from common.functions import (
    cross_entropy_error,
    relu,
    sigmoid,
    softmax,
    step_function,
    sum_squared_error,
)
from common.multi_layer_net import MultiLayerNet
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.trainer import Trainer
from common.util import shuffle_dataset
from dataset.mnist import load_mnist

print("sigmoid:" + str(sigmoid(np.array([-1.0, 0.0, 2.0]))))
print("relu:" + str(relu(np.array([-1.0, 0.0, 2.0]))))
print("step:" + str(step_function(np.array([-1.0, 0.5]))))
y = softmax(np.array([0.3, 2.9, 4.0]))
print("softmax sum:" + str(np.sum(y)))
t = np.array([0.0, 0.0, 1.0])
print("cross entropy:" + str(cross_entropy_error(y, t)))
print("sum squared:" + str(sum_squared_error(y, t)))

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = shuffle_dataset(x_train[:300, ::16], t_train[:300])
x_test, t_test = x_test[:100, ::16], t_test[:100]

bn_network = MultiLayerNetExtend(
    input_size=49, hidden_size_list=[6], output_size=10, use_batchnorm=True
)
grad_backprop = bn_network.gradient(x_train[:2], t_train[:2])
grad_numerical = bn_network.numerical_gradient(x_train[:2], t_train[:2])
for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print("bn diff " + key + ":" + str(diff))

network = MultiLayerNetExtend(
    input_size=49,
    hidden_size_list=[20, 20],
    output_size=10,
    use_dropout=True,
    dropout_ration=0.2,
    use_batchnorm=True,
)
trainer = Trainer(
    network,
    x_train,
    t_train,
    x_test,
    t_test,
    epochs=3,
    mini_batch_size=50,
    optimizer="adam",
    optimizer_param={"lr": 0.01},
    evaluate_sample_num_per_epoch=100,
    verbose=False,
)
trainer.train()
print("trainer test acc:" + str(trainer.test_acc_list))
print("trainer losses:" + str(len(trainer.train_loss_list)))
print("trainer last loss:" + str(trainer.train_loss_list[-1]))

decay_network = MultiLayerNet(
    input_size=49, hidden_size_list=[20], output_size=10, weight_decay_lambda=0.1
)
print("decay loss:" + str(decay_network.loss(x_train[:10], t_train[:10])))
print("decay scores:" + str(decay_network.predict(x_train[:2]).shape))

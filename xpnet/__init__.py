"""xpnet: the chapter "training a neural network", written once against the array API.

The same code runs on NumPy, CuPy, PyTorch, JAX and array-api-strict; pick one with
``XPNET_BACKEND`` (and ``XPNET_DEVICE``) or :func:`get_backend`.
"""

from .backends import BACKENDS, Backend, BackendError, get_backend, to_numpy
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .convnets import DeepConvNet, SimpleConvNet
from .data import DataError, DataSet, SampleFallbackWarning, load_data, load_mnist
from .functions import (
    identity_function,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    step_function,
)
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .layered_nets import MultiLayerNetExtend
from .losses import cross_entropy_error, mean_squared_error, softmax_cross_entropy
from .nets import MultiLayerNet, SimpleNet, TwoLayerNet
from .numerical import (
    PrecisionWarning,
    central_difference,
    default_step,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
    partial_derivative,
    resolve_step,
)
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, get_optimizer
from .sweeps import SweepRecord, grid, sample, sweep
from .trainer import Trainer, shuffle_dataset
from .training import DivergenceWarning, TrainHistory, TrainingDivergedError, train

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "Checkpoint",
    "DataSet",
    "SweepRecord",
    "central_difference",
    "grid",
    "load_checkpoint",
    "load_data",
    "resolve_step",
    "sample",
    "save_checkpoint",
    "sweep",
    "SGD",
    "AdaGrad",
    "Adam",
    "DivergenceWarning",
    "Momentum",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "DeepConvNet",
    "SimpleConvNet",
    "Trainer",
    "shuffle_dataset",
    "Nesterov",
    "RMSprop",
    "get_optimizer",
    "Backend",
    "BackendError",
    "CheckpointError",
    "DataError",
    "GradcheckError",
    "GradcheckReport",
    "SampleFallbackWarning",
    "SimpleNet",
    "TrainHistory",
    "TrainingDivergedError",
    "TwoLayerNet",
    "PrecisionWarning",
    "cross_entropy_error",
    "default_step",
    "get_backend",
    "gradcheck",
    "gradient_descent",
    "identity_function",
    "load_mnist",
    "load_weights",
    "mean_squared_error",
    "numerical_diff",
    "numerical_gradient",
    "partial_derivative",
    "relu",
    "relu_grad",
    "save_weights",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "step_function",
    "train",
    "to_numpy",
]

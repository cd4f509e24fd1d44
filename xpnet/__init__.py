"""xpnet: the chapter "training a neural network", written once against the array API.

The same code runs on NumPy, CuPy, PyTorch, JAX and array-api-strict; pick one with
``XPNET_BACKEND`` (and ``XPNET_DEVICE``) or :func:`get_backend`.
"""

from ._gradcheck import GradcheckError, GradcheckReport, gradcheck
from ._version import __version__ as __version__
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

__all__ = [
    "BACKENDS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Backend",
    "BackendError",
    "Checkpoint",
    "CheckpointError",
    "DataError",
    "DataSet",
    "DeepConvNet",
    "DivergenceWarning",
    "GradcheckError",
    "GradcheckReport",
    "Momentum",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Nesterov",
    "PrecisionWarning",
    "RMSprop",
    "SampleFallbackWarning",
    "SimpleConvNet",
    "SimpleNet",
    "SweepRecord",
    "TrainHistory",
    "Trainer",
    "TrainingDivergedError",
    "TwoLayerNet",
    "central_difference",
    "cross_entropy_error",
    "default_step",
    "get_backend",
    "get_optimizer",
    "gradcheck",
    "gradient_descent",
    "grid",
    "identity_function",
    "load_checkpoint",
    "load_data",
    "load_mnist",
    "load_weights",
    "mean_squared_error",
    "numerical_diff",
    "numerical_gradient",
    "partial_derivative",
    "relu",
    "relu_grad",
    "resolve_step",
    "sample",
    "save_checkpoint",
    "save_weights",
    "shuffle_dataset",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "step_function",
    "sweep",
    "to_numpy",
    "train",
]

"""The book's layers, each forward beside its backward, on any array-API library.

``Affine``, ``Relu``, ``Sigmoid``, ``SoftmaxWithLoss``, ``BatchNormalization``,
``Dropout``, ``Convolution`` and ``Pooling`` take and keep the book's arguments and
attribute names; ``im2col``, ``col2im`` and ``conv_output_size`` are the book's helpers.

A layer computes in the library and on the device of its parameters (or, without any, of
its input); host NumPy input next to parameters elsewhere is moved to them. So the book's
nets, whose parameters come from ``np.random``, run on NumPy, and xpnet's nets, whose
parameters live on their backend's device, run there.
"""

from ._common import operands
from ._im2col import col2im, conv_output_size, im2col, overlap_add, windows
from .conv import Convolution, Pooling
from .core import Affine, Relu, Sigmoid, SoftmaxWithLoss
from .regularization import BatchNormalization, Dropout

__all__ = [
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "col2im",
    "conv_output_size",
    "im2col",
    "operands",
    "overlap_add",
    "windows",
]

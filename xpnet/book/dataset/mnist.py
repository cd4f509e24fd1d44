"""The book's ``dataset.mnist``: xpnet's :func:`~xpnet.load_mnist`.

Full MNIST comes from xpnet's cache or a mirror; offline, xpnet falls back (with a
warning) to the 5,000-digit sample bundled with the package. The arrays are host NumPy,
as the book's loader returns them: images float32 in [0, 1] with ``normalize=True``,
else uint8; ``(N, 784)`` or, with ``flatten=False``, ``(N, 1, 28, 28)``.
"""

from __future__ import annotations

from typing import Any

from ... import data

__all__ = ["img_dim", "img_size", "load_mnist"]

img_dim = (1, 28, 28)
img_size = 784


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False) -> Any:
    """``(x_train, t_train), (x_test, t_test)`` with the book's signature and defaults."""
    return data.load_mnist(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label)

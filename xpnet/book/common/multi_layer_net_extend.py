"""The book's ``common.multi_layer_net_extend``: xpnet's ``MultiLayerNetExtend``.

As :mod:`xpnet.book.common.multi_layer_net`: parameters on the backend's device, initial
weights and (here) dropout masks drawn from NumPy's global generator as the book's, host
NumPy in, host NumPy out.
"""

from __future__ import annotations

from typing import Any

from ... import MultiLayerNetExtend as _MultiLayerNetExtend
from .._host import backend
from .layers import GlobalRandom
from .multi_layer_net import HostAnswers, book_init

__all__ = ["MultiLayerNetExtend"]


class MultiLayerNetExtend(HostAnswers, _MultiLayerNetExtend):
    """The book's signature: ``MultiLayerNetExtend(input_size, hidden_size_list,
    output_size, activation='relu', weight_init_std='relu', weight_decay_lambda=0,
    use_dropout=False, dropout_ration=0.5, use_batchnorm=False)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs, backend=backend())
        book_init(self, self.config["weight_init_std"])
        for layer in self.layers.values():
            if hasattr(layer, "dropout_ratio"):
                layer.rng = GlobalRandom()

"""The book's ``common.multi_layer_net_extend``: xpnet's ``MultiLayerNetExtend``.

As :mod:`xpnet.book.common.multi_layer_net`: parameters on the backend's device, initial
weights and (here) dropout masks drawn from NumPy's global generator as the book's, host
NumPy in, host NumPy out.
"""

from __future__ import annotations

from typing import Any

from ... import MultiLayerNetExtend as _MultiLayerNetExtend
from .._host import backend
from .layers import _GlobalRandom
from .multi_layer_net import HostAnswers, book_init

__all__ = ["MultiLayerNetExtend"]


class MultiLayerNetExtend(HostAnswers, _MultiLayerNetExtend):
    """The book's signature (``dropout_ration`` spelled as the book spells it)."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Any,
        output_size: int,
        activation: str = "relu",
        weight_init_std: Any = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
    ) -> None:
        super().__init__(
            input_size, hidden_size_list, output_size, activation, weight_init_std,
            weight_decay_lambda, use_dropout, dropout_ration, use_batchnorm,
            backend=backend(),
        )  # fmt: skip
        book_init(self, weight_init_std)
        for layer in self.layers.values():
            if hasattr(layer, "dropout_ratio"):
                layer.rng = _GlobalRandom()

"""The book's scripts as clients of xpnet.

:mod:`xpnet.book.finder` answers the book's module names (``common.functions``,
``common.gradient``, ``common.layers``, ``common.optimizer``, ``common.trainer``,
``common.util``, ``common.multi_layer_net``, ``common.multi_layer_net_extend``,
``dataset.mnist``) from xpnet, and :func:`run_script` (the ``xpnet-book`` command, or
``python -m xpnet.book``) runs one of the book's scripts unmodified on the chosen
backend. Importing :mod:`xpnet.book` changes nothing: the names are answered only while
a script runs (or inside :func:`xpnet.book.finder.installed`).
"""

from .runner import BookScriptError, main, run_script

__all__ = ["BookScriptError", "main", "run_script"]

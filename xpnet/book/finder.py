"""The book's module names (``common.layers``, ``dataset.mnist``, ...) answered by xpnet.

:func:`installed` puts a finder first on ``sys.meta_path``, so ``import common.layers``
finds :mod:`xpnet.book.common.layers` even when the book's own ``common/`` folder is on
``sys.path`` (its scripts append the parent folder). Each book name is an alias: the
module object in ``sys.modules`` is xpnet's, so state is never duplicated.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["BOOK_MODULES", "BookFinder", "installed"]

#: The book's module name -> the xpnet module that answers it.
BOOK_MODULES: dict[str, str] = {
    name: f"xpnet.book.{name}"
    for name in (
        "common",
        "common.functions",
        "common.gradient",
        "common.layers",
        "common.multi_layer_net",
        "common.multi_layer_net_extend",
        "common.optimizer",
        "common.trainer",
        "common.util",
        "dataset",
        "dataset.mnist",
    )
}

_PACKAGES = {"common", "dataset"}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Nothing to run (the xpnet module ran when it was imported); the import system
        # has just set the alias's spec on it, and the module keeps its own.
        module.__spec__ = self._own_spec


class BookFinder(importlib.abc.MetaPathFinder):
    """Answers the names in :data:`BOOK_MODULES`; every other name goes on to the others."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102 (the finder API)
        xp_name = BOOK_MODULES.get(fullname)
        if xp_name is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(xp_name), is_package=fullname in _PACKAGES
        )


@contextmanager
def installed() -> Iterator[BookFinder]:
    """Answer the book's module names from xpnet while the block runs.

    On exit the finder is removed, and so are the book's names from ``sys.modules``
    (the xpnet modules behind them stay imported under their own names).
    """
    finder = BookFinder()
    stale = {name: sys.modules.pop(name) for name in BOOK_MODULES if name in sys.modules}
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for name in BOOK_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(stale)

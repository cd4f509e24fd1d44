"""MNIST-format data sets (MNIST, Fashion-MNIST, a bundled 5,000-digit sample).

:func:`load_mnist` has the semantics of the "Deep Learning from Scratch" loader, but reads
the four standard IDX ``.gz`` files itself, verifies them, downloads them when missing and
keeps a parsed copy in xpnet's own cache (never next to data it was only asked to read).
One module per step: ``_idx`` (parsing), ``_cache`` (the parsed cache), ``_download``
(mirrors, retries), ``_load`` (where to look, the public loaders).

Environment variables
---------------------
XPNET_DATA_DIR
    Directory holding the four ``.gz`` files (and where they are downloaded to), used in
    place of ``~/.cache/xpnet/<dataset>`` when no ``data_dir`` is given.
XPNET_CACHE_DIR
    Where parsed ``.npz`` copies go; default ``~/.cache/xpnet/parsed``.
XPNET_OFFLINE
    A switch (``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``); on turns
    downloads off, as ``download=False`` does.
XPNET_MNIST_MIRRORS, XPNET_FASHION_MNIST_MIRRORS
    Comma-separated base URLs replacing :data:`MIRRORS` (an empty value means "no mirror").
"""

from __future__ import annotations

# The settings (FILES, MIRRORS, TIMEOUT_S, ...) are read here too; each module that uses
# one looks it up in its own namespace.
from ._cache import CACHE_KEEP, fingerprint  # noqa: F401
from ._download import BACKOFF_S, MD5S, MIRRORS, RETRIES, RETRY_AFTER_S, TIMEOUT_S  # noqa: F401
from ._idx import FILES, DataError, read_idx  # noqa: F401
from ._load import (  # noqa: F401
    DATASETS,
    SAMPLE_DIR,
    SYSTEM_DIRS,
    ChecksumWarning,
    DataSet,
    SampleFallbackWarning,
    load_data,
    load_mnist,
)

__all__ = [
    "DATASETS",
    "ChecksumWarning",
    "DataError",
    "DataSet",
    "SampleFallbackWarning",
    "fingerprint",
    "load_data",
    "load_mnist",
    "read_idx",
]

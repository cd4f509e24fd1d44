"""Connecting to a Dask cluster: a local one of worker processes, or a running scheduler
(plain or TLS)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._env import restored_environ

#: What to install when Dask is missing.
EXTRA_HINT = "pip install 'xpnet[dask]'"

#: BLAS thread variables a local worker gets as 1 unless the user set them.
_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"Dask is not installed; {EXTRA_HINT}") from None
    return distributed


@contextmanager
def connect(
    address: str,
    *,
    tls_ca: str | os.PathLike[str] | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
) -> Iterator[Any]:
    """A Dask client for a sweep, as a context manager.

    Parameters
    ----------
    address : str
        ``"local:N"`` starts a cluster of N single-threaded worker processes on
        127.0.0.1 for the duration of the ``with`` block (each with one BLAS thread:
        ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` = 1 unless
        already set in the environment) and shuts it down afterwards. Dask's nanny writes
        these variables into this process's environment before it spawns a worker; they
        are put back as they were on exit. Anything else is
        the address of a running scheduler, ``"tcp://host:8786"`` or ``"tls://host:8786"``.
    tls_ca, tls_cert, tls_key : path, optional
        PEM files for a TLS scheduler: the CA that signed the cluster's certificates, this
        client's certificate, and its private key (omit when the certificate file holds
        it). Encryption is then required on every connection.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ImportError
        Dask is not installed (the message names the extra to install).
    ValueError
        A malformed ``local:N``, TLS files with a non-``tls://`` address, a missing file.
    OSError
        The scheduler could not be reached.
    """
    distributed = require_distributed()
    address = str(address).strip()
    if address.startswith("local"):
        n = _local_workers(address)
        if tls_ca or tls_cert or tls_key:
            raise ValueError("TLS files are for a remote scheduler, not for local:N")
        with _local_cluster(distributed, n) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    security = _security(address, tls_ca, tls_cert, tls_key)
    try:
        client = distributed.Client(address, security=security)
    except OSError as e:
        raise OSError(f"could not reach the Dask scheduler at {address}: {e}") from None
    with client:
        yield client


def _local_workers(address: str) -> int:
    _, _, n = address.partition(":")
    try:
        workers = int(n)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(f"--dask {address!r}: write local:N with N >= 1 worker processes")
    return workers


@contextmanager
def _local_cluster(distributed: Any, n: int) -> Iterator[Any]:
    import dask

    # The nanny sets these in its own process (this one) before spawning each worker,
    # and the environment's values win over the config's; put back what was here after.
    # Dask's MALLOC_TRIM_THRESHOLD_ is dropped: it makes glibc mmap and unmap every array
    # over 128 KiB, each training step's among them (the sweep ran 1.7x slower with it).
    env = "distributed.nanny.pre-spawn-environ"
    pre_spawn = {f"{env}.{v}": 1 for v in _BLAS_VARS} | {f"{env}.MALLOC_TRIM_THRESHOLD_": None}
    touched = (*_BLAS_VARS, *dask.config.get(env), "PYTHONHASHSEED")
    with restored_environ(touched):
        with dask.config.set(pre_spawn):
            cluster = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True,
                dashboard_address=None, host="127.0.0.1",
                # no dashboard; its health/metrics server on a free loopback port, so
                # two local clusters never race for 8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )  # fmt: skip
        with cluster:
            yield cluster


def _security(address: str, ca: Any, cert: Any, key: Any) -> Any:
    if not (ca or cert or key):
        return None
    if not (ca and cert):
        raise ValueError(
            "TLS needs the CA file and this client's certificate: give tls_ca and tls_cert "
            "(--dask-tls-ca, --dask-tls-cert; the key too if it is a separate file)"
        )
    if not address.startswith("tls://"):
        raise ValueError(f"TLS files given but the scheduler address {address!r} is not "
                         "tls://host:port")  # fmt: skip
    for what, path in (("CA", ca), ("certificate", cert), ("key", key)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"TLS {what} file {os.fspath(path)!r} does not exist")
    from distributed.security import Security

    return Security(tls_ca_file=os.fspath(ca), tls_client_cert=os.fspath(cert),
                    tls_client_key=os.fspath(key) if key else None,
                    require_encryption=True)  # fmt: skip

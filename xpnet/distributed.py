"""Sweeps on a Dask cluster: one task per stacked group, results as they finish.

:func:`xpnet.sweeps.sweep` with ``client=`` lands here. The configs are grouped exactly as
in-process (:func:`xpnet.sweeps.plan_groups`), each group is one Dask task running
:func:`xpnet.sweeps.run_group` on a worker, so every record equals the in-process sweep's.

* **Data** go to the cluster once, as host NumPy arrays broadcast to every worker
  (``client.scatter(..., broadcast=True)``); each worker process moves them to its device
  once and reuses them for all its tasks (a small per-process cache keyed by the data's
  token, backend and dtype).
* **Where a task trains is the worker's business**: with ``backend_name=None`` each worker
  builds its backend from its own ``XPNET_BACKEND`` / ``XPNET_DEVICE``, so one CuPy worker
  per GPU (dask-cuda's ``LocalCUDACluster`` sets each worker's visible device) needs no
  argument. What changes the numbers (configs, steps, batch size, dtype) is the client's.
* **Faults**: a worker that dies while a task runs has that task rerun elsewhere by the
  scheduler (up to ``distributed.scheduler.allowed-failures`` deaths, 3 by default), and
  results come to the client as soon as a task finishes, so a later death loses none. A
  ValueError or TypeError (a config the code rejects) is not retried; any other error (an
  out-of-memory may pass on another worker) is retried ``retries`` times. Each group has
  a deterministic key, and each finished group is used once.
  A group that still fails is split into single-config tasks, so only the configs that
  really fail are lost; they are reported one line each and, after every other config
  has finished (and gone through ``on_result``), raised together as :class:`SweepTaskError`.
* Results travel as plain dicts (:meth:`SweepRecord.as_dict`); nothing is written to disk.

Dask is optional (``pip install 'xpnet[dask]'``) and imported only inside these functions.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ._json import config_json
from ._progress import progress as progress_bar
from ._progress import write
from .backends import to_numpy
from .sweeps.device import DeviceData, device_data
from .sweeps.records import SweepRecord
from .sweeps.stacked import run_group

__all__ = ["SweepTaskError", "connect", "sweep_on_dask"]

#: What to install when Dask is missing.
EXTRA_HINT = "pip install 'xpnet[dask]'"

#: BLAS thread variables a local worker gets as 1 unless the user set them.
_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SweepTaskError(RuntimeError):
    """Some configs failed on the cluster; every other config finished.

    Attributes
    ----------
    failures : list of (int, dict, str)
        Index into the sweep's configs, the config, and the error in one line.
    records : list of SweepRecord or None
        The sweep's results in config order, ``None`` where a config failed.
    """

    def __init__(self, failures: list[tuple[int, dict[str, Any], str]],
                 records: list[SweepRecord | None]) -> None:  # fmt: skip
        self.failures = failures
        self.records = records
        lines = [_failure_line(i, c, m) for i, c, m in failures]
        super().__init__(
            f"{len(failures)} of {len(records)} configs failed on the cluster:\n"
            + "\n".join(lines)
        )


def _failure_line(index: int, config: dict[str, Any], message: str) -> str:
    return f"config {index} {config_json(config)}: {message}"


def _require_distributed() -> Any:
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
    distributed = _require_distributed()
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
    before = {k: os.environ.get(k) for k in touched}
    try:
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
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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


# --- on the worker ---------------------------------------------------------------------

#: Per worker process: (data token, backend name, dtype) -> DeviceData, newest last.
_DEVICE_DATA: OrderedDict[tuple, DeviceData] = OrderedDict()
_DEVICE_DATA_LOCK = threading.Lock()
#: Data sets kept on a worker's device at once (two sweeps in a row over different data).
_KEEP = 2


def _worker_data(token: str, arrays: tuple, backend_name: str | None,
                 dtype: str | None, output_size: int | None = None) -> DeviceData:  # fmt: skip
    key = (token, backend_name, dtype, output_size)
    with _DEVICE_DATA_LOCK:
        if key in _DEVICE_DATA:
            _DEVICE_DATA.move_to_end(key)
            return _DEVICE_DATA[key]
        data = device_data(*arrays, backend=backend_name, dtype=dtype, output_size=output_size)
        _DEVICE_DATA[key] = data
        while len(_DEVICE_DATA) > _KEEP:
            _DEVICE_DATA.popitem(last=False)
        return data


def _run_group_task(
    configs: list[dict[str, Any]], arrays: tuple, token: str, *,
    backend_name: str | None, dtype: str | None, iters: int, batch_size: int,
    eval_interval: int | None, output_size: int | None = None,
    halving: Sequence[int] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One Dask task: a stacked group trained on this worker, as plain dicts.

    A ValueError or TypeError (a config or argument the code rejects) comes back as
    ``{"error": line}``: it would fail the same way on any worker, so it is not retried.
    Anything else (out of memory, a backend that cannot start) raises, and Dask retries it.
    """
    data = _worker_data(token, arrays, backend_name, dtype, output_size)
    try:
        records = run_group(configs, data, iters=iters, batch_size=batch_size,
                            eval_interval=eval_interval, halving=halving)  # fmt: skip
    except (ValueError, TypeError) as e:
        return {"error": _exception_line(e)}
    return [r.as_dict() for r in records]


# --- on the client ---------------------------------------------------------------------


def sweep_on_dask(
    client: Any,
    configs: Sequence[dict[str, Any]],
    groups: Sequence[Sequence[int]],
    data: tuple[Any, Any, Any, Any],
    *,
    iters: int,
    batch_size: int,
    backend_name: str | None = None,
    dtype: str | None = None,
    eval_interval: int | None = None,
    progress: bool = False,
    on_result: Callable[[int, SweepRecord], None] | None = None,
    retries: int = 3,
    output_size: int | None = None,
    halving: Sequence[int] | None = None,
) -> list[SweepRecord]:
    """Train the groups as Dask tasks, one task per group.

    Parameters
    ----------
    client : distributed.Client
    configs : sequence of dict
        Normalized configs (:func:`xpnet.sweeps.normalize`).
    groups : sequence of lists of int
        Indices into ``configs`` that train as one stacked model
        (:func:`xpnet.sweeps.plan_groups`).
    data : (x_train, t_train, x_test, t_test)
        Arrays of any backend (``x_test``, ``t_test`` may be None); sent to every worker
        once as host NumPy arrays.
    iters, batch_size, eval_interval
        As for :func:`xpnet.train`.
    backend_name : str, optional
        The backend every worker trains on; None: each worker's own ``XPNET_BACKEND``
        (and ``XPNET_DEVICE``), e.g. ``cupy`` on GPU workers.
    dtype : str, optional
        ``"float32"`` or ``"float64"``; None: each worker's ``XPNET_DTYPE`` or float32.
    progress : bool
        A progress bar counting finished configs.
    on_result : callable, optional
        ``on_result(index, record)`` in this process as each group's task finishes.
    retries : int
        Times a task that raised something other than a ValueError or TypeError is rerun
        before its group is split into single configs.
    output_size : int, optional
        Outputs of every net (see :func:`xpnet.sweeps.sweep`).
    halving : sequence of int, optional
        Successive-halving rungs, applied within each task's stack as in-process (see
        :func:`xpnet.sweeps.sweep`); a group split into single configs after failures has
        no one to halve against, so those configs train to the end.

    Returns
    -------
    list of SweepRecord, in the order of ``configs``

    Raises
    ------
    SweepTaskError
        After all other configs finished, when some failed even alone; it lists them and
        holds the finished records.
    """
    distributed = _require_distributed()
    from dask.base import tokenize

    configs = [dict(c) for c in configs]
    host = tuple(None if a is None else to_numpy(a) for a in data)
    # The data's name on the workers (their device copies are cached under it) is a hash
    # of the arrays; the scattered copy gets a fresh key, since a hashed key released by
    # a previous sweep may be forgotten by the scheduler after this one re-sent it.
    data_token = tokenize(*host)
    [arrays] = client.scatter([host], broadcast=True, hash=False)
    options = {"backend_name": backend_name, "dtype": dtype, "iters": int(iters),
               "batch_size": int(batch_size), "eval_interval": eval_interval,
               "output_size": output_size,
               "halving": None if halving is None else [int(r) for r in halving]}  # fmt: skip
    run_token = tokenize(data_token, options, configs)

    live: dict[str, tuple[Any, list[int]]] = {}  # key -> (future, its config indices)

    def submit(members: Sequence[int], tag: str) -> Any:
        key = f"xpnet-group-{run_token}-{tag}"
        future = client.submit(_run_group_task, [configs[i] for i in members], arrays,
                               data_token, key=key, retries=int(retries), pure=False,
                               **options)  # fmt: skip
        live[key] = (future, list(members))
        return future

    results: list[SweepRecord | None] = [None] * len(configs)
    failures: list[tuple[int, dict[str, Any], str]] = []
    # with_results: each result comes to this process as soon as its task finishes, so a
    # worker that dies later does not take a finished result with it
    pending = distributed.as_completed([submit(g, str(n)) for n, g in enumerate(groups)],
                                       with_results=True, raise_errors=False)  # fmt: skip
    desc = f"sweep on dask ({len(configs)} configs, {len(groups)} stacks)"
    bar = progress_bar(total=len(configs), disable=not progress, unit="config", desc=desc)
    try:
        with bar:
            for future, out in pending:
                if future.key not in live:  # seen before: its result is already used
                    continue
                _, members = live.pop(future.key)
                future.release()
                if isinstance(out, tuple):  # (type, exception, traceback): raised past its
                    out = {"error": _exception_line(out[1])}  # retries, or killed workers
                elif isinstance(out, BaseException):  # cancelled
                    out = {"error": _exception_line(out)}
                if isinstance(out, dict):
                    error = out["error"]
                    if len(members) > 1:  # find the config(s) that fail by themselves
                        tag = future.key.rsplit("-", 1)[1]
                        for i in members:
                            pending.add(submit([i], f"{tag}.{i}"))
                        continue
                    [i] = members
                    failures.append((i, configs[i], error))
                    if progress:
                        write(_failure_line(i, configs[i], error))
                    bar.update(1)
                    continue
                for i, d in zip(members, out, strict=True):
                    results[i] = record = SweepRecord.from_dict(d)
                    if on_result is not None:
                        on_result(i, record)
                bar.update(len(members))
    finally:
        if live:  # interrupted: stop what has not finished; what finished is kept
            client.cancel([f for f, _ in live.values()])
        arrays.release()
    if failures:
        raise SweepTaskError(sorted(failures, key=lambda f: f[0]), results)
    return results  # type: ignore[return-value]


def _exception_line(exc: BaseException) -> str:
    """An error in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

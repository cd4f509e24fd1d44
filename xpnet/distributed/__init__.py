"""Sweeps on a Dask cluster: one task per stacked group, results as they finish.

:func:`xpnet.sweeps.sweep` with ``client=`` lands here. The configs are grouped exactly as
in-process (:func:`xpnet.sweeps.plan_groups`), each group is one Dask task running its
:class:`xpnet.sweeps.StackedGroup` on a worker (one per segment between halving rungs),
so every record equals the in-process sweep's.

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
* **Halving** ranks across every stack: each group's task trains to a rung and returns;
  this process ranks the live configs of all groups and sends each group's next task
  its survivors. A paused stack waits, parked on its worker's host, for that task (the
  task asks for it by name); a task that lands elsewhere rebuilds the stack by training
  its members to the rung again.
* Results travel as plain dicts (:meth:`SweepRecord.as_dict`) and, with ``keep_params``,
  host arrays; nothing is written to disk.

The package: :mod:`~xpnet.distributed.cluster` (connecting),
:mod:`~xpnet.distributed.worker` (what runs on a worker) and
:mod:`~xpnet.distributed.client` (:func:`sweep_on_dask`).

Dask is optional (``pip install 'xpnet[dask]'``) and imported only inside these functions.
"""

from __future__ import annotations

from .client import SweepTaskError, sweep_on_dask, worker_budget
from .cluster import EXTRA_HINT, connect

__all__ = ["EXTRA_HINT", "SweepTaskError", "connect", "sweep_on_dask", "worker_budget"]

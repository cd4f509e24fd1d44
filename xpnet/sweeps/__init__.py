"""Many configurations trained at once as one stacked model.

Configs that can share arrays (same layer sizes, activation and optimizer kind) train as
one model whose parameters carry a leading model axis: ``W1`` of shape (K, D, H). Their
per-model hyperparameters (learning rate, weight decay, momentum, ...) become arrays of
shape (K, 1, 1), and every member computes what :func:`xpnet.train` computes for that
config alone (in float64 to the last bits; in float32 hyperparameters that differ across
members are rounded to float32, as arrays, where a single run keeps them as Python
floats): the same initial weights (host RNG, the config's seed), the same batches (configs
with one seed share each batch), the same updates.

A held-out validation split (``validation=``) is the same rows for every config; early
stopping (``patience=``) freezes a member at its best evaluation's parameters inside its
stack. Successive halving (``halving=`` rung steps) ranks the configs still training over
every stack of the sweep at each rung and cuts each stack to its survivors; a dropped
config's record is what its own run recorded up to that rung's evaluation, and a
survivor's what its own run records to the end. ``keep_params=True`` hands each record
the parameters (and optimizer state) its own run would end with.

The package, one module per concern: :mod:`~xpnet.sweeps.configs` (defaults, checking,
grids and samples), :mod:`~xpnet.sweeps.records`, :mod:`~xpnet.sweeps.plan` (which configs
stack, in how much memory), :mod:`~xpnet.sweeps.halving` (rungs and ranking),
:mod:`~xpnet.sweeps.device` (the data on a device), :mod:`~xpnet.sweeps.arrays` (a stack's
arrays built, cut, parked and handed out), :mod:`~xpnet.sweeps.stacked` (one stack's
training), :mod:`~xpnet.sweeps.driver` (:func:`sweep`, here or on Dask through
:mod:`xpnet.distributed`), :mod:`~xpnet.sweeps.ranking` (the best configs of a finished
sweep, their checkpoints), :mod:`~xpnet.sweeps.logs` (TensorBoard runs) and
:mod:`~xpnet.sweeps.ask_tell` (batches of Optuna trials as stacks).
"""

from .arrays import stack_params
from .configs import DEFAULTS, config_key, grid, normalize, sample
from .device import DeviceData, device_data
from .driver import run_group, run_stacks, sweep
from .halving import check_rungs, survivors
from .plan import DEFAULT_MAX_BYTES, model_bytes, plan_groups, stack_budget
from .ranking import rank_records, save_record
from .records import SweepRecord
from .stacked import StackedGroup

__all__ = [
    "DEFAULTS",
    "DEFAULT_MAX_BYTES",
    "DeviceData",
    "StackedGroup",
    "SweepRecord",
    "check_rungs",
    "config_key",
    "device_data",
    "grid",
    "model_bytes",
    "normalize",
    "plan_groups",
    "rank_records",
    "run_group",
    "run_stacks",
    "sample",
    "save_record",
    "stack_budget",
    "stack_params",
    "survivors",
    "sweep",
]

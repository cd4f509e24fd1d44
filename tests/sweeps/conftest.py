"""The sweep tests' data set: one for the whole test run, so every module's comparisons
with single train() runs share the cached runs (keyed by the data set)."""

from __future__ import annotations

import pytest
from _sweep_runs import blobs_for_sweeps


@pytest.fixture(scope="session")
def data():
    x, t = blobs_for_sweeps(400)
    return x[:300], t[:300], x[300:], t[300:]

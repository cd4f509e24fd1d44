"""Initial weights drawn on the host: the same numbers as the RNG's, refused up front when
they cannot fit in this machine's memory."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import _memory


def test_a_draw_that_fits_is_the_generators_own():
    got = _memory.standard_normal(np.random.default_rng(7), (30, 4), "W1")
    np.testing.assert_array_equal(got, np.random.default_rng(7).standard_normal((30, 4)))


def test_a_draw_that_cannot_fit_names_the_parameter(monkeypatch):
    monkeypatch.setattr(_memory, "physical_memory", lambda: 2**20)  # a 1 MiB machine
    with pytest.raises(
        MemoryError,
        match=r"^W2 of shape \(4320, 100\) needs about 6\.6 MiB "
        r"with its copy on the device, more than this machine's 1\.0 MiB$",
    ):
        xpnet.SimpleConvNet(hidden_size=100, backend="numpy", seed=0)
    with pytest.raises(MemoryError, match=r"^W1 of shape \(784, 100\) needs about 1\.2 MiB"):
        xpnet.TwoLayerNet(784, 100, 10, backend="numpy")
    with pytest.raises(MemoryError, match=r"^W7 of shape \(1024, 200\)"):
        xpnet.DeepConvNet(hidden_size=200, backend="numpy")
    xpnet.TwoLayerNet(784, 10, 10, backend="numpy")  # 251 KiB: drawn


def test_unknown_memory_draws_anyway(monkeypatch):
    monkeypatch.setattr(_memory, "physical_memory", lambda: None)  # not POSIX
    assert _memory.standard_normal(np.random.default_rng(0), (3, 2), "W1").shape == (3, 2)


@pytest.mark.parametrize(("n", "text"), [(3 * 2**19, "1.5 MiB"), (2**31, "2.0 GiB"),
                                         (5 * 2**40, "5.0 TiB")])  # fmt: skip
def test_sizes_read_in_the_unit_that_fits(n, text):
    assert _memory.memory_text(n) == text

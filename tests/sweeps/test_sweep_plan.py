"""Which configs stack: by layer sizes, activation, optimizer, and the bounds."""

from __future__ import annotations

from xpnet import sweeps as sweep_module
from xpnet.sweeps import grid, plan_groups


def test_groups_are_split_by_shape_optimizer_and_bounds():
    configs = grid(lr=[0.1, 0.2, 0.3], hidden_size=[10, 20]) + [{"optimizer": "adam"}]
    groups = plan_groups(configs, input_size=784, output_size=10)
    assert groups == [[0, 2, 4], [1, 3, 5], [6]]
    assert plan_groups(configs, input_size=784, output_size=10, max_models=2) == [
        [0, 2],
        [4],
        [1, 3],
        [5],
        [6],
    ]
    one = sweep_module.model_bytes(sweep_module.normalize({}), 784, 10, 100, 4)
    assert plan_groups(
        grid(lr=[0.1, 0.2, 0.3]), input_size=784, output_size=10, max_bytes=2 * one
    ) == [[0, 1], [2]]

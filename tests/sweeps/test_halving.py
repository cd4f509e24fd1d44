"""Successive halving: survivors and stopped configs equal their own train() runs; who
goes on follows the ranking rule; bad rungs are named."""

from __future__ import annotations

import numpy as np
import pytest
from _sweep_runs import CONFIGS, KW, alone

import xpnet
from xpnet import sweeps as sweep_module
from xpnet.sweeps import grid, sweep
from xpnet.sweeps.configs import unit_key


def _truncated(ref, rung):
    """A train() history cut where halving stops it: losses through the rung step,
    evaluations through the rung's."""
    n = ref.eval_steps.index(rung) + 1
    return {
        "loss": ref.loss[: rung + 1],
        "eval_steps": ref.eval_steps[:n],
        "train_acc": ref.train_acc[:n],
        "test_acc": ref.test_acc[:n],
    }


def _assert_prefix_of_own_run(rec, ref, rtol):
    """Survivors equal their own run; stopped configs its first part (as the core test)."""
    want = _truncated(ref, rec.stopped_at) if rec.stopped_at is not None else ref.as_dict()
    assert rec.history.eval_steps == want["eval_steps"]
    assert rec.history.train_acc == want["train_acc"]
    assert rec.history.test_acc == want["test_acc"]
    np.testing.assert_allclose(rec.history.loss, want["loss"], rtol=rtol, atol=0)


def _expected_stops(refs, rungs, configs=None):
    """Who stops where, by the rule applied to each config's own run: at each rung the
    better ceil(n/2) of the running configs go on, a config's seeds together (mean train
    accuracy at the rung, then mean loss since the evaluation before, then config order)."""
    units = [str(i) for i in range(len(refs))] if configs is None else [
        repr(sorted((k, v) for k, v in sweep_module.normalize(c).items() if k != "seed"))
        for c in configs
    ]  # fmt: skip
    running, stops = list(range(len(refs))), {}
    for rung in rungs:

        def score(i, rung=rung):
            h = refs[i]
            e = h.eval_steps.index(rung)
            since = h.eval_steps[e - 1] + 1 if e else 0
            return h.train_acc[e], np.mean(h.loss[since : rung + 1])

        members = {}
        for i in running:
            members.setdefault(units[i], []).append(i)

        def rank(u, members=members):
            scores = [score(i) for i in members[u]]
            return (-np.mean([a for a, _ in scores]), np.mean([v for _, v in scores]),
                    members[u][0])  # fmt: skip

        ranked = sorted(members, key=rank)
        keep = ranked[: -(-len(ranked) // 2)]
        stops.update((i, rung) for u in ranked[len(keep) :] for i in members[u])
        running = sorted(i for u in keep for i in members[u])
    return [stops.get(i) for i in range(len(refs))]


def test_halving_survivors_and_stopped_configs_equal_their_own_train_runs(backend, data):
    rungs = (12, 24)
    records = sweep(CONFIGS, *data, backend=backend, halving=rungs, **KW)
    refs = [alone(c, data, backend) for c in CONFIGS]
    for config, rec, ref in zip(CONFIGS, records, refs, strict=True):
        assert rec.config == sweep_module.normalize(config) and not rec.diverged
        _assert_prefix_of_own_run(rec, ref, rtol=1e-9)
    # ranked across the three stacks (sgd 8, adam 4, momentum 2) at once: 10 units (a
    # config less its seed), 5 go on at the first rung and 3 at the second
    stops = [r.stopped_at for r in records]
    assert stops == _expected_stops(refs, rungs, CONFIGS)
    units = {unit_key(sweep_module.normalize(c)): s for c, s in zip(CONFIGS, stops, strict=True)}
    assert [list(units.values()).count(s) for s in (12, 24, None)] == [5, 2, 3]
    # a config's two seeds (grid order: lr, seed, weight_decay) stop together
    assert stops[0:2] == stops[2:4] and stops[4:6] == stops[6:8]


def test_halving_keeps_who_the_ranking_rule_says(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    lrs = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    base = {"activation": "relu", "weight_init_std": "he"}
    configs = grid(lr=lrs, **base)
    kw = {"iters": 60, "batch_size": 25, "eval_interval": 10}
    records = sweep(configs, *data, backend=b, halving=[10, 20, 40], **kw)
    refs = [xpnet.train(xpnet.MultiLayerNet(32, [50], 10, activation="relu",
                                            weight_init_std="he", backend=b, seed=0),
                        *data, lr=lr, seed=0, **kw) for lr in lrs]  # fmt: skip
    stops = [r.stopped_at for r in records]
    assert stops == _expected_stops(refs, [10, 20, 40])
    assert [stops.count(s) for s in (10, 20, 40, None)] == [4, 2, 1, 1]
    # ranked by train accuracy: the test set never chooses, so without it the same go on
    no_test = sweep(configs, *data[:2], backend=b, halving=[10, 20, 40], **kw)
    assert [r.stopped_at for r in no_test] == stops
    top = sorted(range(8), key=lambda i: -refs[i].train_acc[1])[:4]
    assert sorted(i for i, s in enumerate(stops) if s != 10) == sorted(top)
    for rec, ref in zip(records, refs, strict=True):
        _assert_prefix_of_own_run(rec, ref, rtol=1e-12)


def test_halving_keeps_or_stops_a_configs_seeds_together(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    lrs = [0.003, 0.03, 0.3, 1.0]
    configs = grid(lr=lrs, seed=[0, 1, 2])
    records = sweep(configs, *data, backend=b, halving=[12], **KW)
    refs = [alone(c, data, b) for c in configs]
    stops = [r.stopped_at for r in records]
    assert stops == _expected_stops(refs, [12], configs)
    by_lr = [stops[3 * i : 3 * i + 3] for i in range(4)]  # grid order: lr, then seed
    assert all(len(set(s)) == 1 for s in by_lr) and sorted(s[0] or 0 for s in by_lr) == [
        0, 0, 12, 12]  # fmt: skip
    # the two learning rates with the best mean train accuracy over their seeds go on
    mean_acc = [np.mean([refs[3 * i + j].train_acc[1] for j in range(3)]) for i in range(4)]
    best = sorted(range(4), key=lambda i: -mean_acc[i])[:2]
    assert sorted(i for i in range(4) if by_lr[i][0] is None) == sorted(best)


def test_halving_drops_a_diverging_member_first_even_with_better_accuracy(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    lrs = [0.001, 0.002, 0.003, 1e6, 0.004, 0.005, 0.006, 0.007]
    configs = grid(lr=lrs, activation="relu", weight_init_std="he")
    records = sweep(configs, *data, backend=b, halving=[12], **KW)
    blown = records[3]
    # its train accuracy at the rung (0.12) beats every live member's (0.043 to 0.077),
    # yet it goes
    assert blown.diverged and blown.stopped_at is None and blown.history.train_acc[-1] == 0.12
    assert max(r.history.train_acc[1] for r in records if not r.diverged) == pytest.approx(
        0.07666666666666666, abs=1e-15
    )
    # 7 live members: ceil(7 / 2) = 4 go on, the four largest learning rates
    assert [r.config["lr"] for r in records if r.stopped_at is None and not r.diverged] == lrs[4:]
    assert all(r.stopped_at == 12 for r in records[:3])
    assert blown.history.eval_steps[-1] <= 12  # it left the stack at the rung
    for lr, rec in zip(lrs, records, strict=True):
        if lr != 1e6:
            ref = alone({"lr": lr, "activation": "relu", "weight_init_std": "he"}, data, b)
            _assert_prefix_of_own_run(rec, ref, rtol=1e-12)


def test_halving_a_stack_whose_members_all_diverge_leaves_them_diverged(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    records = sweep(grid(lr=[1e6, 2e6]), *data, backend=b, halving=[24], **KW)
    assert all(r.diverged and r.stopped_at is None for r in records)


@pytest.mark.parametrize(("halving", "message"), [
    ([5], "halving rung 5 is not an evaluation step (evaluations run every 12 steps); "
          "give multiples of 12 below 39"),
    ([36, 39], "halving rung 39 is not before the last step (39)"),
    ([48], "halving rung 48 is not before the last step (39)"),
    ([24, 12], r"halving rungs must be increasing, got \[24, 12\]"),
    ([12, 12], r"halving rungs must be increasing"),
    ([-12], "halving rung -12 is not a step"),
    ([12.0], "halving rung 12.0 is not a step"),
    (12, "halving must be a sequence of rung steps, got 12"),
])  # fmt: skip
def test_bad_rungs_are_named_before_any_group_trains(halving, message, data):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sweep([{}], *data, backend="numpy", halving=halving, **KW)


def test_rungs_follow_the_epoch_when_no_interval_is_given(data):
    # 300 rows, batches of 25: an epoch is 12 steps, so 12 is a rung and 10 is not
    kw = {"iters": 40, "batch_size": 25}
    with pytest.raises(ValueError, match="evaluations run every 12 steps"):
        sweep([{}], *data, backend="numpy", halving=[10], **kw)
    records = sweep(grid(lr=[0.1, 0.2]), *data, backend="numpy", halving=[12], **kw)
    assert sorted(str(r.stopped_at) for r in records) == ["12", "None"]


def test_the_split_into_stacks_does_not_change_who_survives(data):
    # a budget of two members per stack: 7 stacks of the same kind, trained to each rung
    # one after another (the others parked on the host), ranked together
    b = xpnet.get_backend("numpy", dtype="float64")
    configs = grid(lr=[0.003, 0.03, 0.1, 0.3, 1.0, 3.0, 0.01], seed=[0, 1])
    per = sweep_module.model_bytes(sweep_module.normalize({}), 32, 10, 25, 8)
    kw = {**KW, "backend": b, "halving": [12, 24], "validation": 0.25}
    assert len(sweep_module.plan_groups(configs, input_size=32, output_size=10, batch_size=25,
                                        itemsize=8, max_bytes=2 * per)) == 7  # fmt: skip
    split = sweep(configs, *data, max_bytes=2 * per, **kw)
    whole = sweep(configs, *data, max_bytes=100 * per, **kw)
    stops = [r.stopped_at for r in whole]
    assert [r.stopped_at for r in split] == stops
    assert [stops.count(s) for s in (12, 24, None)] == [6, 4, 4]  # 7 units -> 4 -> 2
    for s, w in zip(split, whole, strict=True):
        assert s.history.val_acc == w.history.val_acc
        assert s.history.final_test_acc == w.history.final_test_acc is not None
        np.testing.assert_allclose(s.history.loss, w.history.loss, rtol=1e-12)


def test_halving_ranks_on_validation_when_there_is_a_validation_set(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    lrs = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    configs = grid(lr=lrs, activation="relu", weight_init_std="he")
    records = sweep(configs, *data, backend=b, halving=[12], validation=0.25, **KW)
    refs = [alone(c, data, b, validation=0.25) for c in configs]
    at_rung = [(h.val_acc[1], h.val_loss[1]) for h in refs]
    best = sorted(range(8), key=lambda i: (-at_rung[i][0], at_rung[i][1], i))[:4]
    assert sorted(i for i, r in enumerate(records) if r.stopped_at is None) == sorted(best)
    for rec, ref in zip(records, refs, strict=True):
        n = len(rec.history.eval_steps)
        assert rec.history.val_acc == ref.val_acc[:n] and rec.history.test_acc == []


def test_survivors_rank_on_validation_over_train_accuracy():
    def history(train, val=None, val_loss=0.5):
        h = xpnet.TrainHistory(loss=[2.0, 1.0], train_acc=[0.1, train], eval_steps=[0, 1])
        if val is not None:
            h.val_acc, h.val_loss = [0.1, val], [2.0, val_loss]
        return h

    alive, units = np.ones(4, dtype=bool), ["a", "b", "c", "d"]
    plain = [history(0.9), history(0.8), history(0.3), history(0.2)]
    assert sweep_module.survivors(plain, alive, units) == [0, 1]
    held = [history(0.9, 0.8), history(0.8, 0.3), history(0.3, 0.7), history(0.2, 0.7, 0.4)]
    assert sweep_module.survivors(held, alive, units) == [0, 3]  # not 1: validation chooses
    # 3 live units, 2 go on: the tie at 0.7 goes to the lower validation loss
    three = np.array([True, False, True, True])
    assert sweep_module.survivors(held, three, units) == [0, 3]  # 0.4 against 0.5
    held[3].val_loss[-1] = 0.6
    assert sweep_module.survivors(held, three, units) == [0, 2]

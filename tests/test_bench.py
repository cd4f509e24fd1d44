"""The benchmarks package: the chapter's reference as an oracle, the FLOP model, the report,
the machine description, the new rows, and (slow) a whole ``scripts/bench.py --quick`` run."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import numpy as np
import pytest
from _scripts import load_script

import xpnet
from benchmarks import chapter
from benchmarks.load import competitor
from benchmarks.machine import machine
from benchmarks.optim import COMPARE
from benchmarks.report import fmt, ratios, report, table
from benchmarks.sections import bench_closure_gradient
from benchmarks.stacked import (
    bench_stacked_steps,
    learning_rates,
    stacked_ratios,
    steps_difference,
)
from benchmarks.timing import eval_steps, matmul_plan, recipe_flops, step_flops
from xpnet.evaluation import EVAL_CHUNK
from xpnet.testing import TOLERANCES, numerical_atol

# Same weights, same inputs, float64: the two implementations differ only in rounding.
# 100 eps, relative to the largest entry, leaves room for a different summation order.
ORACLE_RTOL = TOLERANCES["float64"][1]


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _relative_error(actual: np.ndarray, desired: np.ndarray) -> float:
    return float(np.max(np.abs(actual - desired)) / np.max(np.abs(desired)))


# --- the chapter's code as the oracle of xpnet's TwoLayerNet ---------------------------


@pytest.fixture
def oracle_case():
    """The chapter's TwoLayerNet (6-5-3) with weights large enough to give real gradients."""
    rng = np.random.RandomState(7)
    ref = chapter.TwoLayerNet(6, 5, 3, weight_init_std=0.8, rng=rng)
    ref.params["b1"] = 0.3 * rng.randn(5)
    ref.params["b2"] = 0.3 * rng.randn(3)
    x = rng.rand(4, 6)
    t = np.array([0, 2, 1, 2])
    return ref, x, t


def _xpnet_copy(ref, backend) -> xpnet.TwoLayerNet:
    net = xpnet.TwoLayerNet(6, 5, 3, backend=backend, seed=0)
    net.params = {k: backend.asarray(v) for k, v in ref.params.items()}
    return net


def test_chapter_predict_and_loss_match_xpnet(backend, oracle_case):
    ref, x, t = oracle_case
    net = _xpnet_copy(ref, backend)
    y_ref = ref.predict(x)
    y = backend.to_numpy(net.predict(backend.asarray(x)))
    assert _relative_error(y, y_ref) <= ORACLE_RTOL
    # The chapter's loss adds 1e-7 inside the log; its formula without that shift:
    ce_ref = -np.mean(np.log(y_ref[np.arange(4), t]))
    loss = float(backend.to_numpy(net.loss(backend.asarray(x), backend.asarray(t))))
    assert abs(loss - ce_ref) <= ORACLE_RTOL * ce_ref
    # ...and the shift itself: -mean(log(y + 1e-7)) sits just below the exact loss.
    shift = ce_ref - ref.loss(x, np.eye(3)[t])
    assert 0 < shift <= 1e-7 / np.min(y_ref[np.arange(4), t])


def test_chapter_backprop_matches_xpnet_gradient(backend, oracle_case):
    ref, x, t = oracle_case
    net = _xpnet_copy(ref, backend)
    expected = ref.gradient(x, np.eye(3)[t])
    grads = net.gradient(backend.asarray(x), backend.asarray(t))
    assert set(grads) == set(expected) == {"W1", "b1", "W2", "b2"}
    for k, g in grads.items():
        assert _relative_error(backend.to_numpy(g), expected[k]) <= ORACLE_RTOL, k


def test_chapter_numerical_loop_matches_xpnet_numerical_gradient(oracle_case):
    ref, x, t = oracle_case
    net = _xpnet_copy(ref, xpnet.get_backend("numpy", "cpu", "float64"))

    def loss(_w):  # the chapter's closure, without its 1e-7 shift inside the log
        return -np.mean(np.log(ref.predict(x)[np.arange(4), t]))

    ours = net.numerical_gradient(x, t)
    for k in ("W1", "b1", "W2", "b2"):
        expected = chapter.numerical_gradient(loss, ref.params[k])
        np.testing.assert_allclose(ours[k], expected, rtol=0, atol=numerical_atol("float64"))


# --- the book's MultiLayerNet (next chapter) as the oracle of xpnet's -----------------


@pytest.fixture
def book_net_case():
    """The book's MultiLayerNet 6-[5,4]-3, relu, He init, weight decay 0.1, random biases."""
    rng = np.random.RandomState(3)
    ref = chapter.MultiLayerNet(6, [5, 4], 3, weight_decay_lambda=0.1, rng=rng)
    for k in ("b1", "b2", "b3"):
        ref.params[k] += 0.3 * rng.randn(*ref.params[k].shape)  # in place: layers share them
    x = rng.rand(7, 6) - 0.3
    t = np.array([0, 2, 1, 2, 0, 1, 1])
    return ref, x, t


def test_book_multilayernet_loss_and_gradient_match_xpnet(backend, book_net_case):
    ref, x, t = book_net_case
    net = xpnet.MultiLayerNet(6, [5, 4], 3, weight_decay_lambda=0.1, backend=backend, seed=0)
    net.params = {k: backend.asarray(v) for k, v in ref.params.items()}
    xd, td = backend.asarray(x), backend.asarray(t)
    # The book adds 1e-7 inside the log: its loss sits just below the exact one.
    probs = chapter.softmax(ref.predict(x))[np.arange(7), t]
    decay = 0.05 * sum(np.sum(ref.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    loss = float(backend.to_numpy(net.loss(xd, td)))
    assert abs(loss - (-np.mean(np.log(probs)) + decay)) <= ORACLE_RTOL * loss
    assert 0 < loss - ref.loss(x, t) <= 1e-7 / np.min(probs)
    expected = ref.gradient(x, t)
    grads = net.gradient(xd, td)
    assert set(grads) == set(expected) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    for k, g in grads.items():
        assert _relative_error(backend.to_numpy(g), expected[k]) <= ORACLE_RTOL, k
    # Without the decay term the weight gradients would differ by 0.1 * W:
    assert _relative_error(expected["W1"] - 0.1 * ref.params["W1"], expected["W1"]) > 1e-3


@pytest.mark.parametrize("name", ["SGD", "Momentum", "AdaGrad", "Adam"])
def test_book_optimizers_match_xpnet_over_ten_updates(name):
    key, lr = COMPARE[name]
    rng = np.random.default_rng(1)
    start = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(10)]
    book = {k: v.copy() for k, v in start.items()}
    ours = {k: v.copy() for k, v in start.items()}
    book_opt, our_opt = chapter.COMPARE_OPTIMIZERS[name](), xpnet.get_optimizer(key, lr=lr)
    for g in grads:
        book_opt.update(book, g)
        our_opt.update(ours, g)
    for k in start:
        assert _relative_error(ours[k] - start[k], book[k] - start[k]) <= ORACLE_RTOL, k


def test_book_compare_loop_learns():
    rng = np.random.default_rng(0)
    x = rng.random((300, 784))
    t = (x[:, 0] * 10).astype(np.int64)  # a label the first pixel decides
    seconds, losses = chapter.compare_run("Adam", x, t, 60)
    assert seconds > 0 and len(losses) == 60
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


# --- the FLOP model --------------------------------------------------------------------


def test_step_flops_by_hand_for_a_small_shape():
    # batch 2, d 4, hidden 3, c 5: x@W1 2*2*4*3 + z1@W2 2*2*3*5 + z1.T@dy 2*3*2*5
    # + dy@W2.T 2*2*5*3 + x.T@da1 2*4*2*3
    assert step_flops(2, 3, d=4, c=5) == 48 + 60 + 60 + 60 + 48 == 276


def test_matmul_plan_by_hand_for_a_small_shape():
    # 7 steps of batch 2; 10 train rows -> an evaluation every 5 steps: after steps 0, 5.
    # Evaluation chunks of 4 rows: train 4+4+2, test 4+1.
    assert eval_steps(7, 10, batch=2) == [0, 5]
    plan = dict(matmul_plan(7, 10, 5, d=4, hidden=3, c=5, batch=2, chunk=4))
    assert plan == {
        (2, 4, 3, 0): 7 + 2,  # x@W1 per step, and the 2-row train chunk twice
        (2, 3, 5, 0): 7 + 2,
        (3, 2, 5, 1): 7,  # z1.T@dy
        (2, 5, 3, 0): 7,  # dy@W2.T
        (4, 2, 3, 1): 7,  # x.T@da1
        (4, 4, 3, 0): 3 * 2,  # three 4-row chunks per evaluation
        (4, 3, 5, 0): 3 * 2,
        (1, 4, 3, 0): 2,
        (1, 3, 5, 0): 2,
    }
    per_eval_row = 2 * (4 * 3 + 3 * 5)
    assert recipe_flops(7, 10, 5, d=4, hidden=3, c=5, batch=2, chunk=4) == (
        7 * 276 + 2 * 15 * per_eval_row
    )


def test_flop_model_evaluates_in_the_library_chunks():
    plan = dict(matmul_plan(600, 60_000, 10_000))
    eval_rows = {m for (m, k, n, _), _count in plan.items() if k == 784 and m != 100}
    assert max(eval_rows) == EVAL_CHUNK
    assert plan[(EVAL_CHUNK, 784, 50, 0)] == 60_000 // EVAL_CHUNK + 10_000 // EVAL_CHUNK


def test_recipe_flops_of_the_chapter_run():
    # forward x@W1, z1@W2; backward z1.T@dy, dy@W2.T, x.T@da1 (2 FLOPs per multiply-add)
    b, d, h, c = 100, 784, 50, 10
    per_step = 2 * (b * d * h + b * h * c + h * b * c + b * c * h + d * b * h)
    assert step_flops(b, h) == per_step == 15_980_000
    per_eval = 2 * (60_000 + 10_000) * (d * h + h * c)
    assert eval_steps(10_000, 60_000) == list(range(0, 10_000, 600))
    assert recipe_flops(10_000, 60_000, 10_000) == 10_000 * per_step + 17 * per_eval


# --- report and machine ----------------------------------------------------------------


def test_cells_and_table_format():
    assert [fmt(v) for v in (None, 1234567, 3.14159, 12345.678, 0.00012345, 0.0)] == [
        "-", "1,234,567", "3.142", "12,345.7", "0.000123", "0",
    ]  # fmt: skip
    assert table(["a", "num"], [["x", 1.5], ["yy", 10]]).splitlines() == [
        "a   num", "--  ---", "x   1.5", "yy   10",
    ]  # fmt: skip
    assert table(["a", "num"], []).splitlines() == ["a  num", "-  ---"]


def _small_result() -> dict:
    def row(section_id: str, seconds: float, **extra) -> dict:
        return {"id": section_id, "seconds": seconds, **extra}

    return {
        "machine": {"cpu_model": "Test CPU", "cpu_count": 2, "python": "3.x", "numpy": "n",
                    "blas": "b", "torch": None, "torch_threads": None, "gpu": None},
        "config": {"iters": 10, "repeats": 1},
        "data": {"name": "synthetic", "n_train": 60_000, "n_test": 10_000},
        "training": [
            row("xpnet/numpy:cpu/float32", 2.0, impl="xpnet", backend="numpy", device="cpu",
                dtype="float32", samples_per_second=500.0, final_test_acc=0.1),
            row("chapter/numpy:cpu/float64", 8.0, impl="chapter", backend="numpy",
                device="cpu", dtype="float64", samples_per_second=125.0, final_test_acc=0.1),
        ],
        "matmul": {"numpy:cpu/float32": {"recipe_gflop": 1.0, "recipe_shapes_gflops": 10.0,
                                         "floor_seconds": 0.5, "gemm_n": 64,
                                         "gemm_gflops": 20.0}},
        "numerical_gradient": [], "numerical_training": [], "scaling": [],
        "closure_gradient": [
            row("closure-xpnet/numpy:cpu/n100/sum-squares", 0.25, impl="xpnet", n=100,
                max_abs_diff=0.0),
            row("closure-chapter/numpy:cpu/n100/sum-squares", 0.5, impl="chapter", n=100,
                max_abs_diff=0.0),
        ],
        "under_load": [
            row("load-idle/numpy:cpu/float32", 1.5, load="idle", backend="numpy",
                device="cpu", dtype="float32", steps=10, competitor=None),
            row("load-busy/numpy:cpu/float32", 4.5, load="busy", backend="numpy",
                device="cpu", dtype="float32", steps=10, competitor="one matmul process"),
        ],
        "skipped": [{"id": "cupy:cuda/float32", "reason": "not installed"}],
    }  # fmt: skip


def test_ratios_divide_the_named_rows():
    got = {r["name"]: r for r in ratios(_small_result())}
    assert {k: v["value"] for k, v in got.items()} == {
        "xpnet/floor": 4.0,
        "xpnet/baseline": 0.25,
        "closure/loop": 0.5,
        "loaded/idle": 3.0,
    }
    assert got["loaded/idle"]["denominator"] == "load-idle/numpy:cpu/float32"


def test_report_prints_every_section_with_its_ratio():
    result = _small_result()
    result["ratios"] = ratios(result)
    lines = report(result).splitlines()
    assert lines[1].startswith("machine: Test CPU, 2 CPUs")
    assert "NOTE: synthetic data (random uint8 images and labels): accuracies are chance" in lines
    header = next(line for line in lines if line.startswith("impl ") and "/chapter" in line)
    assert "/floor" in header
    xp_row = next(line for line in lines if line.startswith("xpnet    numpy"))
    assert xp_row.split()[-3:] == ["0.25", "-", "4"]  # /chapter, /pytorch, /floor
    busy = next(line for line in lines if line.startswith("busy "))
    assert busy.split()[4:6] == ["4.5", "3"] and busy.endswith("one matmul process")
    closure = next(line for line in lines if line.startswith("xpnet ") and " 100 " in line)
    assert closure.split() == ["xpnet", "sum-squares", "100", "0.25", "0.5", "0"]
    assert lines[-1] == "skipped cupy:cuda/float32: not installed"


def _stacked_row(kind, part, k, seconds, steps=100, floor=None, backend="numpy",
                 device="cpu") -> dict:  # fmt: skip
    return {"id": f"{kind}-{part}/{backend}:{device}/float32/k{k}", "kind": kind, "part": part,
            "backend": backend, "device": device, "dtype": "float32", "models": k,
            "steps": steps, "seconds": seconds, "seconds_per_model_step": seconds / (k * steps),
            "floor_seconds_per_model_step": floor}  # fmt: skip


def _new_sections() -> dict:
    def opt(name, seconds):
        return {"id": f"optim-{name}/numpy:cpu/float32", "impl": f"optim-{name}",
                "optimizer": name, "lr": 0.1, "seconds": seconds, "final_loss": 0.5,
                "final_test_acc": 0.8}  # fmt: skip

    def cmp(impl, name, dtype, seconds):
        return {"id": f"compare-{impl}-{name}/numpy:cpu/{dtype}", "impl": f"compare-{impl}-{name}",
                "optimizer": name, "dtype": dtype, "seconds": seconds, "steps": 20,
                "final_loss": 1.0}  # fmt: skip

    return {
        "optimizers": [opt("sgd", 2.0), opt("momentum", 2.2), opt("adam", 2.5)],
        "optimizer_compare": [cmp("xpnet", "Adam", "float32", 1.0),
                              cmp("book", "Adam", "float64", 3.0)],
        "stacked": [_stacked_row("stacked", "steps", 16, 1.6, floor=5e-4),
                    _stacked_row("stacked", "steps", 64, 8.0, floor=5e-4),
                    _stacked_row("sequential", "steps", 16, 3.2),
                    _stacked_row("stacked", "sweep", 16, 6.0, steps=300),
                    _stacked_row("sequential", "sweep", 16, 10.0, steps=300),
                    # a GPU: 256 configs in one stack against one run
                    _stacked_row("stacked", "steps", 256, 3.0, backend="cupy", device="cuda"),
                    _stacked_row("sequential", "steps", 1, 1.2, backend="cupy", device="cuda")],
    }  # fmt: skip


def test_ratios_of_the_optimizer_and_stacked_rows():
    result = {**_small_result(), **_new_sections()}
    got = {(r["name"], r["numerator"]): r for r in ratios(result)}
    value = {k: v["value"] for k, v in got.items()}
    assert value["momentum/sgd", "optim-momentum/numpy:cpu/float32"] == pytest.approx(1.1)
    assert value["adam/sgd", "optim-adam/numpy:cpu/float32"] == pytest.approx(1.25)
    assert value["book/xpnet", "compare-book-Adam/numpy:cpu/float64"] == 3.0
    k16, k64 = "stacked-steps/numpy:cpu/float32/k16", "stacked-steps/numpy:cpu/float32/k64"
    assert value["stacked/sequential steps", k16] == 0.5
    assert value["stacked/sequential sweep", "stacked-sweep/numpy:cpu/float32/k16"] == 0.6
    # 1.6 s / (16 models * 100 steps) = 1 ms per model-step, twice the 0.5 ms floor
    assert value["stacked step/floor", k16] == pytest.approx(2.0)
    assert value["k64/k16 per model", k64] == pytest.approx(1.25)  # 1.25 ms against 1 ms
    assert got["k64/k16 per model", k64]["denominator"] == k16
    assert ("stacked/sequential steps", k64) not in got  # no sequential run of 64
    gpu = "stacked-steps/cupy:cuda/float32/k256"
    assert value["stacked/one run steps", gpu] == pytest.approx(2.5)  # 3.0 s against 1.2 s
    assert (
        got["stacked/one run steps", gpu]["denominator"] == "sequential-steps/cupy:cuda/float32/k1"
    )
    assert [num for name, num in got if name.startswith("stacked/one run")] == [gpu]
    assert not [num for _, num in got if num.startswith("optim-sgd/")]  # sgd/sgd is no ratio


def test_report_prints_the_optimizer_and_stacked_sections():
    result = {**_small_result(), **_new_sections()}
    result["ratios"] = ratios(result)
    lines = report(result).splitlines()
    adam = next(line for line in lines if line.startswith("adam "))
    assert adam.split() == ["adam", "0.1", "2.5", "1.25", "0.5", "0.8"]
    book = next(line for line in lines if line.startswith("Adam ") and "book" in line)
    assert book.split() == ["Adam", "book", "float64", "3", "3", "1"]
    k16 = next(line for line in lines if line.startswith("stacked     steps") and " 16 " in line)
    assert k16.split()[3:] == ["16", "100", "1.6", "1", "0.5", "-", "2", "-"]
    k256 = next(line for line in lines if line.startswith("stacked     steps") and " 256 " in line)
    assert k256.split()[2:] == ["cupy:cuda", "256", "100", "3", "0.1172", "-", "2.5", "-", "-"]


def test_learning_rates_and_the_steps_difference():
    lrs = learning_rates(16)
    assert len(lrs) == 16 and lrs[0] == pytest.approx(0.01) and lrs[-1] == pytest.approx(1.0)
    assert lrs[1] / lrs[0] == pytest.approx(lrs[-1] / lrs[-2])  # evenly spaced in log
    # T(S) = fixed + S * step and T(S/2) = fixed + S/2 * step give back both parts.
    assert steps_difference(2.0 + 1000 * 0.004, 2.0 + 500 * 0.004, 1000) == {
        "steps_seconds": pytest.approx(2.0), "fixed_seconds": pytest.approx(2.0),
    }  # fmt: skip


def test_machine_description():
    m = machine()
    assert set(m) == {"cpu_count", "cpus_usable", "cpu_model", "platform", "python", "numpy",
                      "blas", "blas_threads", "torch", "torch_threads", "cupy", "gpu",
                      "xpnet", "loadavg_start"}  # fmt: skip
    assert m["cpu_count"] == os.cpu_count() and m["numpy"] == np.__version__
    assert m["xpnet"] == xpnet.__version__ and m["cpu_model"]
    if _torch_installed():
        import torch

        assert m["torch"] == torch.__version__ and m["torch_threads"] >= 1


# --- the closure-gradient and under-load rows ------------------------------------------


def test_closure_gradient_rows():
    rows = {r["id"]: r for r in bench_closure_gradient(300, 1)}
    assert set(rows) == {
        f"closure-{impl}/numpy:cpu/n300/{f}"
        for impl in ("xpnet", "chapter")
        for f in ("sum-squares", "first-element")
    }
    for r in rows.values():
        assert _positive(r["seconds"]) and r["runs"] == [r["seconds"]]
        # Both take the same central differences with h = 1e-4: the same roundings.
        assert r["max_abs_diff"] == 0.0


def test_competitor_runs_until_the_block_ends():
    with competitor() as proc:
        assert proc.poll() is None
    assert proc.returncode is not None and proc.returncode != 0  # killed


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        load_script("bench").main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--gpu-only" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--iters", "0"], "bench: error: argument --iters: expected a positive integer, got '0'"),
        (["--gpu-only", "--peak-rss"],
         "bench: error: --gpu-only times GPU rows only: drop --include-strict and --peak-rss"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        load_script("bench").main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err == message + "\n"  # no usage block


def _gpu_usable() -> bool:
    for name in ("torch", "cupy"):
        try:
            xpnet.get_backend(name, "cuda")
            return True
        except xpnet.BackendError:
            pass
    return False


@pytest.mark.skipif(_gpu_usable(), reason="a GPU is usable here: --gpu-only would run")
def test_gpu_only_without_a_gpu_is_one_line_and_exit_1(capsys):
    assert load_script("bench").main(["--gpu-only", "--quick", "--synthetic"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: --gpu-only: no GPU backend is usable here")
    assert "\n" not in err


# --- slow: one whole quick run ---------------------------------------------------------


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "b.json"
    argv = ["--quick", "--synthetic", "--iters", "50", "--out", str(out)]
    assert load_script("bench").main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_quick_run_has_every_section(result):
    sections = ("machine", "config", "data", "matmul", "training", "numerical_gradient",
                "numerical_training", "scaling", "closure_gradient", "under_load", "ratios",
                "skipped", "interference", "optimizers", "optimizer_compare",
                "stacked")  # fmt: skip
    assert set(sections) <= set(result)
    assert result["data"] == {"name": "synthetic", "synthetic": True, "n_train": 60_000,
                              "n_test": 10_000}  # fmt: skip
    assert result["machine"]["numpy"] == np.__version__
    assert result["config"]["iters"] == 50 and result["config"]["eval_steps"] == [0]
    assert result["config"]["gpu_only"] is False
    for name, entry in result["interference"].items():
        assert _positive(entry["wall_seconds"]), name
        assert entry["other_share"] is None or entry["other_share"] >= 0


@pytest.mark.slow
def test_quick_run_rows(result):
    rows = {r["id"]: r for r in result["training"]}
    expected = ["xpnet/numpy:cpu/float32", "xpnet/numpy:cpu/float64", "chapter/numpy:cpu/float64"]
    if _torch_installed():
        expected += ["xpnet/torch:cpu/float32", "pytorch/torch:cpu/float32"]
    for row_id in expected:
        row = rows[row_id]
        for key in ("seconds", "samples_per_second", "final_test_acc"):
            assert _positive(row[key]), (row_id, key, row[key])
        assert row["seconds"] == pytest.approx(50 * 100 / row["samples_per_second"])
    floor = result["matmul"]["numpy:cpu/float32"]
    assert floor["recipe_gflop"] == pytest.approx(recipe_flops(50, 60_000, 10_000) / 1e9)
    assert {s["m"] for s in floor["shapes"]} >= {100, EVAL_CHUNK}
    for row in result["scaling"]:
        assert all(_positive(row[k]) for k in ("seconds", "gflops", "percent_of_gemm"))
    numgrad = {r["id"]: r for r in result["numerical_gradient"]}
    # The chapter's loss adds 1e-7 inside the log; that shifts its gradient by about 1e-6.
    assert numgrad["numgrad-chapter/numpy:cpu/b3"]["max_abs_diff"] < 1e-5
    assert "numgrad-chapter/numpy:cpu/b100" not in numgrad  # --quick skips the long loop
    steps = {r["id"]: r["steps"] for r in result["numerical_training"]}
    assert steps["numtrain/numpy:cpu"] == 2
    load = {r["load"]: r for r in result["under_load"]}
    assert load["idle"]["steps"] == load["busy"]["steps"] == 50
    assert load["idle"]["competitor"] is None and "matmuls" in load["busy"]["competitor"]
    assert {r["impl"] for r in result["closure_gradient"]} == {"xpnet", "chapter"}


@pytest.mark.slow
def test_quick_run_optimizer_and_stacked_rows(result):
    opt = {r["optimizer"]: r for r in result["optimizers"]}
    assert list(opt) == ["sgd", "momentum", "adam"]
    for r in opt.values():
        assert _positive(r["seconds"]) and math.isfinite(r["final_loss"])
    compare = {r["id"]: r for r in result["optimizer_compare"]}
    for name in ("SGD", "Momentum", "AdaGrad", "Adam"):
        for impl, dtype in (("xpnet", "float32"), ("book", "float64")):
            row = compare[f"compare-{impl}-{name}/numpy:cpu/{dtype}"]
            assert _positive(row["seconds"]) and row["steps"] == 50
            assert math.isfinite(row["final_loss"])
    stacked = {r["id"]: r for r in result["stacked"]}
    expected = ["stacked-steps/numpy:cpu/float32/k16", "stacked-steps/numpy:cpu/float32/k64",
                "sequential-steps/numpy:cpu/float32/k16", "stacked-sweep/numpy:cpu/float32/k16",
                "sequential-sweep/numpy:cpu/float32/k16"]  # fmt: skip
    if _torch_installed():
        expected += ["stacked-steps/torch:cpu/float32/k16", "stacked-sweep/torch:cpu/float32/k16"]
    assert set(expected) <= set(stacked)
    steps = stacked["stacked-steps/numpy:cpu/float32/k64"]
    assert steps["steps"] == 25 and steps["models"] == 64  # T(50) - T(25)
    assert steps["floor_seconds_per_model_step"] == pytest.approx(
        step_flops(100, 50) / result["matmul"]["numpy:cpu/float32"]["gemm_gflops"] / 1e9
    )
    assert stacked["stacked-sweep/numpy:cpu/float32/k16"]["steps"] == 50
    names = {r["name"] for r in result["ratios"]}
    assert {"momentum/sgd", "adam/sgd", "book/xpnet", "stacked/sequential steps",
            "stacked/sequential sweep", "stacked step/floor",
            "k64/k16 per model"} <= names  # fmt: skip


@pytest.mark.slow
def test_quick_run_ratios_are_quotients_of_its_rows(result):
    stacked = {r["id"]: r for r in result["stacked"]}
    for r in result["ratios"]:
        if r["numerator"] in stacked and r["name"] != "stacked step/floor":
            num, den = stacked[r["numerator"]], stacked[r["denominator"]]
            key = "seconds" if r["name"].startswith("stacked/") else "seconds_per_model_step"
            assert r["value"] == pytest.approx(num[key] / den[key])
    every = [r for k in ("training", "numerical_gradient", "scaling", "closure_gradient",
                         "under_load", "optimizers", "optimizer_compare")
             for r in result[k]]  # fmt: skip
    seconds = {r["id"]: r["seconds"] for r in every}
    seconds.update({f"floor/{k}": v["floor_seconds"] for k, v in result["matmul"].items()})
    names = {r["name"] for r in result["ratios"]}
    assert {"xpnet/baseline", "xpnet/floor", "vectorized/loop", "closure/loop",
            "loaded/idle"} <= names  # fmt: skip
    if _torch_installed():
        assert "xpnet/pytorch" in names
    for r in result["ratios"]:
        if r["numerator"] not in stacked:
            assert r["value"] == pytest.approx(seconds[r["numerator"]] / seconds[r["denominator"]])


@pytest.mark.slow
def test_peak_rss_of_the_train_script():
    from benchmarks.sections import peak_rss

    p = peak_rss("mnist-sample", 5)
    assert p["returncode"] == 0, p["stderr"]
    assert _positive(p["peak_rss_mib"])
    assert p["stdout"].splitlines()[-1].startswith("final: train acc")


@pytest.mark.slow
def test_peak_rss_of_a_stacked_sweep(tmp_path):
    from benchmarks.sections import peak_rss

    p = peak_rss("mnist-sample", 5, "sweep", ("--lr", "0.1", "0.2", "--out", str(tmp_path)))
    assert p["returncode"] == 0, p["stderr"]
    assert _positive(p["peak_rss_mib"])
    assert (tmp_path / "results.jsonl").read_text().count("\n") == 2


def test_stacked_steps_against_one_run():
    """The GPU row's shape, run on the CPU: a stack of K against one run, same steps."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(300, 784), dtype=np.uint8)
    t = rng.integers(0, 10, size=300)
    b = xpnet.get_backend("numpy", dtype="float32")
    rows = bench_stacked_steps(b, (x, t), 8, 1, (3,), None, sequential_k=1)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {"stacked-steps/numpy:cpu/float32/k3",
                          "sequential-steps/numpy:cpu/float32/k1"}  # fmt: skip
    got = {(r["name"], r["numerator"]): r["value"] for r in stacked_ratios(rows)}
    stacked, one = by_id["stacked-steps/numpy:cpu/float32/k3"], by_id[
        "sequential-steps/numpy:cpu/float32/k1"]  # fmt: skip
    assert stacked["steps"] == one["steps"] == 4  # T(8) - T(4)
    assert got["stacked/one run steps", stacked["id"]] == stacked["seconds"] / one["seconds"]


def test_compiled_ratios_divide_the_compiled_row_by_the_eager_and_numpy_rows():
    from benchmarks.compiled import compiled_ratios, compiled_report

    def row(backend, compiled, seconds):
        return {"backend": backend, "kind": "recipe", "compiled": compiled, "steps": 10,
                "loop_seconds": seconds, "compile_seconds_first": 1.5 if compiled else 0.0,
                "compile_seconds": 0.5 if compiled else 0.0, "compiles": int(compiled),
                "final_loss": 2.0}  # fmt: skip

    rows = [row("numpy:cpu", False, 2.0), row("jax:cpu", False, 8.0), row("jax:cpu", True, 2.4)]
    (q,) = compiled_ratios(rows)
    assert q == {"backend": "jax:cpu", "kind": "recipe", "compiled_over_eager": 0.3,
                 "compiled_over_numpy": 1.2}  # fmt: skip
    text = compiled_report({"rows": rows, "ratios": [q]})
    assert "jax:cpu      recipe   compiled/eager 0.30, compiled/xpnet numpy 1.20" in text
    assert "compile   1.50 s first" in text


def test_help_lists_the_compile_section(capsys):
    with pytest.raises(SystemExit):
        load_script("bench").main(["--help"])
    assert "--section {all,compile}" in capsys.readouterr().out

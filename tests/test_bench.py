"""scripts/bench.py: a quick synthetic run in-process, and its FLOP bookkeeping."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest
from _scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench")


@pytest.fixture(scope="module")
def result(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "b.json"
    argv = ["--quick", "--synthetic", "--iters", "50", "--out", str(out)]
    assert bench.main(argv) == 0
    return json.loads(out.read_text())


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_run_has_every_section(result):
    sections = ("machine", "config", "data", "matmul", "training", "numerical_gradient",
                "numerical_training", "scaling", "ratios", "skipped", "interference")  # fmt: skip
    assert set(sections) <= set(result)
    assert result["data"] == {"name": "synthetic", "synthetic": True, "n_train": 60_000,
                              "n_test": 10_000}  # fmt: skip
    m = result["machine"]
    assert m["cpu_count"] >= 1 and m["numpy"] == np.__version__
    assert result["config"]["iters"] == 50 and result["config"]["eval_steps"] == [0]
    for name, entry in result["interference"].items():
        assert _positive(entry["wall_seconds"]), name
        assert entry["other_share"] is None or entry["other_share"] >= 0


def test_numerical_training_reports_steps_per_second(result):
    rows = {r["id"]: r for r in result["numerical_training"]}
    assert "numtrain/numpy:cpu" in rows
    for r in rows.values():
        assert r["steps"] == 2 and _positive(r["seconds"])
        assert r["steps_per_second"] == pytest.approx(r["steps"] / r["seconds"])


def test_training_rows_are_positive_and_finite(result):
    rows = {r["id"]: r for r in result["training"]}
    expected = ["xpnet/numpy:cpu/float32", "xpnet/numpy:cpu/float64", "chapter/numpy:cpu/float64"]
    if _torch_installed():
        expected += ["xpnet/torch:cpu/float32", "pytorch/torch:cpu/float32"]
    for row_id in expected:
        row = rows[row_id]
        for key in ("seconds", "samples_per_second", "final_test_acc"):
            assert _positive(row[key]), (row_id, key, row[key])
        assert all(_positive(s) for s in row["runs"])
        assert row["seconds"] == pytest.approx(50 * 100 / row["samples_per_second"])


def test_floor_and_scaling_are_positive_and_finite(result, bench):
    floor = result["matmul"]["numpy:cpu/float32"]
    assert floor["recipe_gflop"] == pytest.approx(bench.recipe_flops(50, 60_000, 10_000) / 1e9)
    for entry in result["matmul"].values():
        for key in ("floor_seconds", "recipe_shapes_gflops", "gemm_gflops", "gemm_seconds"):
            assert _positive(entry[key]), key
    assert result["scaling"]
    for row in result["scaling"]:
        for key in ("seconds", "gflops", "percent_of_gemm"):
            assert _positive(row[key]), (row["id"], key)


def test_numerical_gradients_agree_with_the_chapter_loop(result):
    rows = {r["id"]: r for r in result["numerical_gradient"]}
    loop = rows["numgrad-chapter/numpy:cpu/b3"]
    assert _positive(loop["seconds"])
    # The chapter's loss adds 1e-7 inside the log; that shifts its gradient by about 1e-6.
    assert loop["max_abs_diff"] < 1e-5
    assert _positive(rows["numgrad-xpnet/numpy:cpu/b3"]["seconds"])
    assert "numgrad-chapter/numpy:cpu/b100" not in rows  # --quick skips the long loop


def test_ratios_are_the_quotients_of_the_reported_times(result):
    seconds = {r["id"]: r["seconds"] for r in result["training"] + result["numerical_gradient"]}
    seconds.update({f"floor/{k}": v["floor_seconds"] for k, v in result["matmul"].items()})
    names = {r["name"] for r in result["ratios"]}
    assert {"xpnet/baseline", "xpnet/floor", "vectorized/loop"} <= names
    if _torch_installed():
        assert "xpnet/pytorch" in names
    for r in result["ratios"]:
        assert _positive(r["value"])
        assert r["value"] == pytest.approx(seconds[r["numerator"]] / seconds[r["denominator"]])


def test_printed_table(result, bench, capsys):
    text = bench.report(result)
    assert "NOTE: synthetic data" in text
    assert "(a-c) training loop" in text and "(f) one training step" in text
    header = next(line for line in text.splitlines() if line.startswith("impl "))
    assert "/chapter" in header and "/floor" in header


def test_flop_count_matches_a_direct_count(bench):
    # forward x@W1, z1@W2; backward z1.T@dy, dy@W2.T, x.T@da1 (2 FLOPs per multiply-add)
    b, d, h, c = 100, 784, 50, 10
    per_step = 2 * (b * d * h + b * h * c + h * b * c + b * c * h + d * b * h)
    assert bench.step_flops(b, h) == per_step == 15_980_000
    per_eval = 2 * (60_000 + 10_000) * (d * h + h * c)
    assert bench.eval_steps(10_000, 60_000) == list(range(0, 10_000, 600))
    assert bench.recipe_flops(10_000, 60_000, 10_000) == 10_000 * per_step + 17 * per_eval


def test_peak_rss_of_the_train_script(bench):
    p = bench.peak_rss("mnist-sample", 5)
    assert p["returncode"] == 0, p["stderr"]
    assert _positive(p["peak_rss_mib"]) and p["stdout"].startswith("final: test acc")


def test_help_exits_cleanly(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--help"])
    assert exc.value.code == 0
    assert "--quick" in capsys.readouterr().out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))

"""scripts/sweep.py: grid flags, files written, resume after a kill, presets."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _full_disk import fill_the_disk

from xpnet.cli import sweep as sweep_cli
from xpnet.cli.sweep import default_rungs, sweep_main
from xpnet.cli.sweep_results import read_results

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--dataset", "mnist-sample", "--iters", "60", "--batch-size", "50", "--quiet"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_grid_writes_results_summary_and_figures(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*SMALL, "--lr", "0.1", "1.0", "--hidden-size", "10", "20", "--out", str(out)]
    assert sweep_main(args) == 0
    text = capsys.readouterr().out
    lines = _lines(out / "results.jsonl")
    assert len(lines) == 4
    assert {(c["config"]["lr"], tuple(c["config"]["hidden_sizes"])) for c in lines} == {
        (0.1, (10,)),
        (1.0, (10,)),
        (0.1, (20,)),
        (1.0, (20,)),
    }
    csv_rows = (out / "summary.csv").read_text().splitlines()
    header = csv_rows[0].split(",")
    assert {"lr", "hidden_sizes"} <= set(header) and len(csv_rows) == 5
    assert header[-3:] == ["test_acc_mean", "test_acc_std", "diverged"]
    accs = [float(r.split(",")[-3]) for r in csv_rows[1:]]
    assert accs == sorted(accs, reverse=True)
    assert (out / "curves.png").stat().st_size > 0 and (out / "heatmap.png").stat().st_size > 0
    assert "test acc (mean ± std)" in text
    # a second run finds everything done and trains nothing
    assert sweep_main(args) == 0
    assert "4 already in" in capsys.readouterr().out
    assert len(_lines(out / "results.jsonl")) == 4


def test_a_killed_sweep_resumes_and_equals_an_uninterrupted_one(tmp_path):
    grid = ["--lr", "0.05", "0.1", "0.5", "1.0", "--max-models", "1", "--iters", "400"]
    base = [
        sys.executable,
        str(ROOT / "scripts" / "sweep.py"),
        *SMALL[:2],
        "--batch-size",
        "50",
        "--quiet",
        "--dtype",
        "float64",
        *grid,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*base, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL)
    results = killed / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (results.exists() and results.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    first = len(_lines(results))
    assert 1 <= first < 4, "kill the sweep half-way"
    subprocess.run([*base, "--out", str(killed)], env=env, check=True, capture_output=True)
    clean = tmp_path / "clean"
    subprocess.run([*base, "--out", str(clean)], env=env, check=True, capture_output=True)
    resumed, whole = _lines(results), _lines(clean / "results.jsonl")
    assert len(resumed) == 4
    assert sorted(json.dumps(r["config"]) for r in resumed) == sorted(
        json.dumps(r["config"]) for r in whole
    )
    by_key = {json.dumps(r["config"], sort_keys=True): r for r in whole}
    for r in resumed:
        ref = by_key[json.dumps(r["config"], sort_keys=True)]
        for k in ("loss", "train_acc", "test_acc", "eval_steps"):
            assert r["history"][k] == ref["history"][k]


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    good = {"config": {"lr": 0.1}, "history": {"loss": [1.0]}, "diverged": False}
    path.write_text(json.dumps(good) + "\n" + '{"config": {"lr": 0.5}, "hist')
    [rec] = read_results(path).values()
    assert rec.stopped_at is None  # a line from before halving: it trained to the end


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--iters", "0"], "argument --iters: expected a positive integer, got '0'"),
        (["--hidden-sizes", "100,x"], "--hidden-sizes takes lists like 100,100"),
        (["--optimizer", "sgd", "--momentum", "0.9"], "--momentum applies to --optimizer"),
        (["--optimizer", "adam", "--beta1", "2"], "beta1 must be in [0, 1)"),
    ],
)
def test_bad_flags_are_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    if message:
        assert message in err


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["optimizer-compare", "weight-init-compare"])
def test_presets_run_as_one_sweep(tmp_path, preset):
    out = tmp_path / preset
    assert (
        sweep_main(
            [
                "--preset",
                preset,
                "--dataset",
                "mnist-sample",
                "--iters",
                "200",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = _lines(out / "results.jsonl")
    assert len(lines) == (4 if preset == "optimizer-compare" else 3)
    assert all(r["config"]["hidden_sizes"] == [100, 100, 100, 100] for r in lines)
    assert (out / "curves.png").stat().st_size > 0


def test_dask_local_cluster_gives_the_in_process_results(tmp_path, capsys):
    pytest.importorskip("distributed")
    grid = ["--lr", "0.1", "1.0", "--hidden-size", "10", "20", "--dtype", "float64"]
    assert sweep_main([*SMALL, *grid, "--out", str(tmp_path / "here")]) == 0
    assert sweep_main([*SMALL, *grid, "--out", str(tmp_path / "dask"), "--dask", "local:2"]) == 0
    here = {
        json.dumps(r["config"], sort_keys=True): r
        for r in _lines(tmp_path / "here" / "results.jsonl")
    }
    there = _lines(tmp_path / "dask" / "results.jsonl")
    assert len(there) == 4
    for r in there:
        ref = here[json.dumps(r["config"], sort_keys=True)]
        assert r["history"]["test_acc"] == ref["history"]["test_acc"]
        assert r["history"]["loss"] == pytest.approx(ref["history"]["loss"], rel=1e-12)
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, *grid, "--out", str(tmp_path / "bad"), "--dask", "local:zero"])
    assert info.value.code == 2 and "local:N" in capsys.readouterr().err


def test_ctrl_c_keeps_what_finished(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "scripts" / "sweep.py"), *SMALL[:2], "--batch-size", "50",
           "--quiet", "--lr", "0.05", "0.1", "0.5", "1.0", "--max-models", "1", "--iters", "400",
           "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (results.exists() and results.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    kept = len(_lines(results))
    assert proc.returncode == 130 and 1 <= kept < 4
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"xpnet-sweep: interrupted: stopped while training; {kept} of 4 configs finished"
        )
    )


def test_ctrl_c_right_after_a_write_counts_what_the_file_keeps(tmp_path, capsys, monkeypatch):
    """Ctrl-C may land after a result is written and before anything else runs: the
    message counts the configs in the file, not the ones the loop got to count."""
    real = sweep_cli.append_result

    def write_then_interrupt(path, record):
        real(path, record)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_cli, "append_result", write_then_interrupt)
    out = tmp_path / "run"
    args = [*SMALL, "--lr", "0.1", "1.0", "--max-models", "1", "--out", str(out)]
    with pytest.raises(SystemExit) as info:
        sweep_main(args)
    assert info.value.code == 130
    assert len(_lines(out / "results.jsonl")) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "xpnet-sweep: interrupted: stopped while training; 1 of 2 configs finished, kept in "
        f"{out / 'results.jsonl'} (rerun to resume)"
    )


def test_rerun_with_other_settings_in_the_same_out_is_refused(tmp_path, capsys):
    out = ["--out", str(tmp_path / "o"), "--lr", "0.1"]
    assert sweep_main([*SMALL, *out]) == 0
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL[:2], "--iters", "90", "--batch-size", "50", "--quiet", *out])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "iters 60 -> 90" in err and "another --out" in err


def test_default_rungs_are_the_evaluation_steps_nearest_an_eighth_a_quarter_a_half():
    assert default_rungs(2000, 600) == [600, 1200]  # 250 -> 0 is dropped
    assert default_rungs(80, 10) == [10, 20, 40]
    assert default_rungs(10_000, 600) == [1200, 2400, 4800]
    assert default_rungs(100, 25) == [25, 50]  # 12.5 -> 0 and 25 -> 25 once
    assert default_rungs(60, 80) == []  # no evaluation step between 0 and the last


def test_halving_flag_stops_configs_lists_them_last_and_resume_skips_them(tmp_path, capsys):
    out = tmp_path / "run"
    common = [*SMALL[:2], "--iters", "80", "--batch-size", "50", "--eval-interval", "10",
              "--quiet", "--dtype", "float64", "--out", str(out)]  # fmt: skip
    lrs = ["--lr", "0.05", "0.1", "0.5", "1.0"]
    assert sweep_main([*common, *lrs, "--halving"]) == 0
    text = capsys.readouterr().out
    assert "halving at steps 10, 20, 40" in text and "stopped at" in text
    assert json.loads((out / "run.json").read_text())["halving"] == [10, 20, 40]
    lines = _lines(out / "results.jsonl")
    stops = {r["config"]["lr"]: r["stopped_at"] for r in lines}
    # 4 -> 2 at step 10, 2 -> 1 at step 20; one member left trains on alone
    assert sorted(stops.values(), key=str) == [10, 10, 20, None]
    for r in lines:
        last = r["history"]["eval_steps"][-1]
        assert last == (79 if r["stopped_at"] is None else r["stopped_at"])
        assert len(r["history"]["loss"]) == last + 1
    rows = (out / "summary.csv").read_text().splitlines()
    header = rows[0].split(",")
    cells = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:]]
    # finished first, then stopped ones, the further ones first
    assert [c["stopped_at"] for c in cells] == ["", "20", "10", "10"]
    assert float(cells[0]["lr"]) == next(lr for lr, s in stops.items() if s is None)
    assert float(cells[1]["lr"]) == next(lr for lr, s in stops.items() if s == 20)
    tail = [float(c["test_acc_mean"]) for c in cells[2:]]  # same rung: by accuracy
    assert tail == sorted(tail, reverse=True)
    # a rerun with one more config trains only that one: stopped configs count as done;
    # alone in the sweep it cannot be halved, and the user is told so
    assert sweep_main([*common, *lrs, "0.2", "--halving"]) == 0
    captured = capsys.readouterr()
    assert "4 already in" in captured.out
    assert captured.err.startswith(
        "xpnet-sweep: warning: halving: the sweep holds a single config"
    )
    lines = _lines(out / "results.jsonl")
    assert len(lines) == 5 and lines[-1]["config"]["lr"] == 0.2
    assert lines[-1]["stopped_at"] is None  # alone in the sweep: nobody to halve against
    # other rungs, or none, are another run setting
    for other, was in ((["--halving", "10", "20"], "[10, 20]"), ([], "None")):
        with pytest.raises(SystemExit) as info:
            sweep_main([*common, *lrs, *other])
        err = capsys.readouterr().err
        assert info.value.code == 2 and f"halving [10, 20, 40] -> {was}" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--eval-interval", "10", "--halving", "15"],
         "halving rung 15 is not an evaluation step (evaluations run every 10 steps)"),
        (["--eval-interval", "10", "--halving", "15"], "or set --eval-interval to divide it"),
        (["--halving"], "--halving: no evaluation step (every 80 steps) lies between 0 and"),
    ],
)  # fmt: skip
def test_bad_halving_is_one_line_and_writes_no_run_setting(tmp_path, capsys, args, message):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, "--out", str(out), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (out / "run.json").exists()


def test_a_run_json_from_before_halving_still_resumes(tmp_path, capsys):
    out = tmp_path / "o"
    assert sweep_main([*SMALL, "--out", str(out), "--lr", "0.1"]) == 0
    run = json.loads((out / "run.json").read_text())
    del run["halving"]
    (out / "run.json").write_text(json.dumps(run))
    assert sweep_main([*SMALL, "--out", str(out), "--lr", "0.1"]) == 0
    assert "1 already in" in capsys.readouterr().out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("xpnet-sweep: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "--lr must be a positive finite number, got -1.0"),
        (["--weight-decay", "-1"], "--weight-decay must be a number >= 0, got -1.0"),
        (["--weight-init-std", "lecun"], "--weight-init-std must be a positive number or one"),
    ],
)
def test_library_errors_name_the_flags(tmp_path, capsys, args, message):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, "--out", str(out), *args])
    assert info.value.code == 2 and message in _one_error_line(capsys)
    assert not (out / "run.json").exists()  # refused before any work


def test_library_warnings_are_lines_in_flag_wording(tmp_path, capsys):
    args = [*SMALL, "--lr", "0.1", "--eval-interval", "10", "--halving", "10"]
    assert sweep_main([*args, "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("xpnet-sweep: warning: halving: the sweep holds a single config")
    assert err.count("\n") == 1 and "no rung can cut" in err


def test_a_failed_summary_write_leaves_the_old_files_whole(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    args = [*SMALL, "--lr", "0.1", "1.0", "--out", str(out)]
    assert sweep_main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"run.json", "results.jsonl", "summary.csv", "curves.png"} <= set(before)
    capsys.readouterr()
    fill_the_disk(monkeypatch)
    with pytest.raises(SystemExit) as info:
        sweep_main(args)  # nothing left to train: the summary is written again, and fails
    assert info.value.code == 1
    # the figures are still tried after the summary failed; one line names both
    assert _one_error_line(capsys) == (
        f"xpnet-sweep: error: cannot write {out / 'summary.csv'} (No space left on device); "
        f"cannot write {out / 'curves.png'} (No space left on device); "
        f"wrote {out / 'results.jsonl'}\n"
    )
    # no half file, no temporaries: every file as the first run left it
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_failed_run_json_write_leaves_no_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    fill_the_disk(monkeypatch)
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, "--lr", "0.1", "--out", str(out)])
    assert info.value.code == 2
    assert "cannot write run.json (No space left on device)" in _one_error_line(capsys)
    assert [p.name for p in out.iterdir()] == [".lock"]  # the folder's lock, nothing else


def test_sweep_script_runs_from_an_uninstalled_checkout(tmp_path):
    """Only the script's own checkout can provide xpnet: no site-packages (``-S``), and a
    PYTHONPATH holding just the dependencies."""
    deps = tmp_path / "deps"
    deps.mkdir()
    for name in ("numpy", "array_api_compat", "threadpoolctl"):
        spec = importlib.util.find_spec(name)
        where = Path(spec.origin)
        where = where.parent if spec.submodule_search_locations else where
        for path in (where, where.with_name(where.name + ".libs")):  # numpy's bundled BLAS
            if path.exists():
                (deps / path.name).symlink_to(path)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(deps),
           "OPENBLAS_NUM_THREADS": "1", "XPNET_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    python = [sys.executable, "-S"]
    probe = subprocess.run([*python, "-c", "import xpnet"], env=env, cwd=tmp_path,
                           capture_output=True, text=True)  # fmt: skip
    assert "No module named 'xpnet'" in probe.stderr  # else this test would prove nothing
    out = tmp_path / "o"
    cmd = [*python, str(ROOT / "scripts" / "sweep.py"), *SMALL, "--lr", "0.1", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(_lines(out / "results.jsonl")) == 1 and (out / "summary.csv").is_file()
    assert "xpnet-sweep: warning: no figures: plotting needs matplotlib" in proc.stderr


def test_validation_early_stopping_best_checkpoints_and_logs(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    from xpnet.checkpoint import load_checkpoint
    from xpnet.cli import evaluate_main, train_main

    out = tmp_path / "run"
    args = [*SMALL, "--lr", "0.1", "0.5", "1.0", "--eval-interval", "10", "--dtype", "float64",
            "--validation", "0.2", "--patience", "2", "--save-best", "2", "--max-stack-bytes",
            "1M", "--log-dir", str(tmp_path / "tb"), "--out", str(out)]  # fmt: skip
    assert sweep_main(args) == 0
    text = capsys.readouterr().out
    assert "val acc (mean ± std)" in text
    assert json.loads((out / "run.json").read_text())["validation"] == 0.2
    lines = _lines(out / "results.jsonl")
    assert all(r["history"]["val_acc"] and r["history"]["test_acc"] == [] for r in lines)
    rows = (out / "summary.csv").read_text().splitlines()
    header = rows[0].split(",")
    cells = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:]]
    vals = [float(c["val_acc_mean"]) for c in cells]
    assert vals == sorted(vals, reverse=True)  # ranked on validation
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["lr=0.1", "lr=0.5", "lr=1.0"]
    # the best config's checkpoint is the summary's first row, and evaluates to its score
    best = load_checkpoint(out / "best-1.npz")
    assert best.meta["config"]["lr"] == float(cells[0]["lr"])
    assert (out / "best-2.npz").is_file() and not (out / "best-3.npz").exists()
    assert evaluate_main([str(out / "best-1.npz"), "--dataset", "mnist-sample",
                          "--dtype", "float64"]) == 0  # fmt: skip
    assert f"mnist-sample: {float(cells[0]['test_acc_mean']):.4f}" in capsys.readouterr().out
    # and train resumes it
    resumed = tmp_path / "resumed.json"
    assert train_main(["--resume", str(out / "best-1.npz"), "--dataset", "mnist-sample",
                       "--iters", "80", "--quiet", "--dtype", "float64",
                       "--metrics-out", str(resumed)]) == 0  # fmt: skip
    metrics = json.loads(resumed.read_text())
    assert metrics["val_acc"][: len(best.meta["history"]["val_acc"])] == best.meta["history"][
        "val_acc"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, "--patience", "2", "--out", str(tmp_path / "o")])
    assert info.value.code == 2 and "give --validation too" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep_main([*SMALL, "--max-stack-bytes", "lots", "--out", str(tmp_path / "o")])
    assert "expected a number of bytes such as 512M" in capsys.readouterr().err


def test_torch_out_of_memory_in_a_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    """torch's OutOfMemoryError is no MemoryError; the sweep still reports it in one line."""
    torch = pytest.importorskip("torch")

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(sweep_cli, "sweep", out_of_memory)
    with pytest.raises(SystemExit) as info:
        sweep_main([*SMALL, "--lr", "0.1", "--out", str(tmp_path / "o")])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("xpnet-sweep: error: out of memory while training")
    assert "(CUDA out of memory. Tried to allocate 20.00 GiB)" in err

"""xpnet-train, xpnet-evaluate, the figure scripts and bench.py against odd checkpoints,
outputs that collide or sit behind links, a full disk, signals, odd numbers and data
files whose header lies. Real files; real processes for signals."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from _cli_runs import SAMPLE, error_line, script, script_env, status
from _full_disk import real_full_disk
from _scripts import load_script

import xpnet
from xpnet.checkpoint import load_checkpoint, save_checkpoint
from xpnet.cli import evaluate_main, train_main
from xpnet.data import FILES, DataError, read_idx

TRAIN, EVALUATE = "xpnet-train", "xpnet-evaluate"


pytestmark = pytest.mark.usefixtures("no_download")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of 5 steps of the default recipe on the sample."""
    path = tmp_path_factory.mktemp("ckpt") / "c.npz"
    assert train_main([*SAMPLE, "--iters", "5", "--save", str(path)]) == 0
    return path


def _edited(src, dst, edit=None, params=None):
    """``src`` with its meta changed by ``edit(meta)`` and/or other parameters."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    if edit is not None:
        meta = edit(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    arrays.update(params or {})
    np.savez(dst, **arrays)
    return dst


# ---------------------------------------------------------------------------- --resume
def test_resume_names_every_flag_that_disagrees_with_the_checkpoint(checkpoint, capsys):
    argv = [*SAMPLE, "--resume", str(checkpoint), "--iters", "10", "--lr", "0.5",
            "--optimizer", "adam", "--batch-size", "7", "--seed", "3",
            "--activation", "relu", "--hidden-size", "20"]  # fmt: skip
    assert status(train_main, argv) == 2
    assert error_line(capsys.readouterr().err, TRAIN) == (
        f"{TRAIN}: error: --resume {checkpoint}: --batch-size 7 (it has 100), --lr 0.5 (it "
        "has 0.1), --activation relu (it has sigmoid), --seed 3 (it has 0), --optimizer "
        "adam (it has sgd), --hidden-size 20 (its hidden layers are 50): a resumed run keeps "
        "the settings it was saved with; drop these flags, or start a new run without --resume"
    )


def test_resume_takes_the_data_set_from_the_checkpoint_and_says_where_it_starts(
    checkpoint, tmp_path, capsys
):
    out = tmp_path / "more.npz"
    # the same values as the checkpoint's may be given; --dataset is not
    argv = ["--quiet", "--resume", str(checkpoint), "--iters", "12", "--lr", "0.1",
            "--save", str(out)]  # fmt: skip
    assert train_main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{TRAIN}: data: mnist-sample from bundled sample")
    assert lines[1] == f"{TRAIN}: resumed from step 5 of 12 ({checkpoint})"
    assert "warning" not in captured.err  # no attempt at full MNIST
    more = load_checkpoint(out)
    assert more.meta["step"] == 12 and len(more.meta["history"]["loss"]) == 12


def _config(key, value):
    def edit(meta):
        meta["config"][key] = value
        return meta

    return edit


def _history_loss(meta):
    meta["history"]["loss"] = "x"
    return meta


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_config("batch_size", 0), "its settings hold --batch-size 0, values this version"),
        (_config("optimizer", "lbfgs"), 'its settings hold --optimizer "lbfgs", values'),
        (_config("lr", "fast"), 'its settings hold --lr "fast", values'),
        (_config("seed", -1), "its settings hold --seed -1, values"),
        (_config("hidden_sizes", "abc"), 'its settings hold --hidden-sizes "abc", values'),
        (lambda m: {**m, "config": [1, 2]}, "not a checkpoint of a run saved with --save"),
        (_history_loss, "wrong types in history loss; it was edited or written by another"),
        (lambda m: [m], "its 'meta' entry is not a JSON object"),
    ],
    ids=[
        "batch0",
        "optimizer",
        "lr-text",
        "seed",
        "sizes-text",
        "config-list",
        "history",
        "meta-list",
    ],  # fmt: skip
)
def test_a_hand_edited_checkpoint_is_one_line(checkpoint, tmp_path, capsys, edit, message):
    bad = _edited(checkpoint, tmp_path / "bad.npz", edit)
    assert status(train_main, [*SAMPLE, "--resume", str(bad), "--iters", "10"]) == 2
    line = error_line(capsys.readouterr().err, TRAIN)
    assert line.startswith(f"{TRAIN}: error: --resume {bad}: ") and message in line, line
    # evaluate needs no settings: it still reads the weights, or says in one line why not
    code = status(evaluate_main, [str(bad), "--dataset", "mnist-sample"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 0 if "meta" not in message else code == 2


def _net_file(tmp_path, outputs):
    net = xpnet.TwoLayerNet(784, 5, outputs, seed=0)
    return save_checkpoint(tmp_path / f"net{outputs}.npz", net, meta={"dataset": "mnist-sample"})


def test_resume_refuses_a_net_that_is_not_ten_classes(tmp_path, capsys, checkpoint):
    wide = _edited(
        checkpoint, tmp_path / "wide.npz",
        params={"W2": np.zeros((50, 12)), "b2": np.zeros(12)},
    )  # fmt: skip
    assert status(train_main, [*SAMPLE, "--resume", str(wide), "--iters", "10"]) == 2
    assert error_line(capsys.readouterr().err, TRAIN) == (
        f"{TRAIN}: error: --resume {wide}: its output layer has 12 units, but the data sets "
        "have 10 classes; it is not a net this command trains"
    )


def test_evaluate_takes_any_width_the_labels_allow_and_refuses_fewer(tmp_path, capsys):
    assert evaluate_main([str(_net_file(tmp_path, 12))]) == 0
    report = capsys.readouterr().out
    assert "test accuracy on mnist-sample: " in report
    assert "  11: 0.0000  (0 images)" in report  # a class the net has and the labels do not
    assert report.splitlines()[-1].split()[0] == "11"  # 12 rows of the confusion matrix
    narrow = _net_file(tmp_path, 6)
    assert status(evaluate_main, [str(narrow)]) == 2
    assert error_line(capsys.readouterr().err, EVALUATE) == (
        f"{EVALUATE}: error: {narrow}: its output layer has 6 units, but mnist-sample has "
        "labels up to 9; it was not trained on this data set"
    )


# ------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize("other", ["--metrics-out", "--plot"])
def test_two_outputs_naming_one_file_are_refused(tmp_path, capsys, other):
    x = tmp_path / "x"
    link = tmp_path / "link.png"
    link.symlink_to(x)
    for second in (x, link):  # the same path, or a link to it
        assert status(train_main, [*SAMPLE, "--iters", "3", "--save", str(x), other,
                                   str(second)]) == 2  # fmt: skip
        line = error_line(capsys.readouterr().err, TRAIN)
        assert line == (
            f"{TRAIN}: error: {other} {second} and --save {x} name the same file; give each "
            "output its own path"
        )
    assert not x.exists()


def test_an_output_may_not_overwrite_the_checkpoint_it_resumes(checkpoint, capsys):
    before = checkpoint.read_bytes()
    argv = [*SAMPLE, "--resume", str(checkpoint), "--iters", "9", "--metrics-out",
            str(checkpoint)]  # fmt: skip
    assert status(train_main, argv) == 2
    assert error_line(capsys.readouterr().err, TRAIN) == (
        f"{TRAIN}: error: --metrics-out {checkpoint} would overwrite --resume {checkpoint}; "
        "give the output another path"
    )
    assert checkpoint.read_bytes() == before


def test_writing_through_a_link_updates_the_file_it_points_to(tmp_path):
    real, metrics = tmp_path / "real.npz", tmp_path / "real.json"
    real.write_bytes(b"old")
    metrics.write_text("old")
    save, out = tmp_path / "save-link.npz", tmp_path / "metrics-link.json"
    save.symlink_to(real)
    out.symlink_to(metrics)
    argv = [*SAMPLE, "--iters", "3", "--save", str(save), "--metrics-out", str(out)]
    assert train_main(argv) == 0
    assert save.is_symlink() and out.is_symlink()
    assert load_checkpoint(real).meta["step"] == 3
    assert json.loads(metrics.read_text())["config"]["iters"] == 3


def test_a_temporary_left_by_a_killed_save_goes_with_the_next_save(tmp_path):
    target = tmp_path / "w.npz"
    killed = (
        "import os, signal, sys\n"
        "from xpnet._files import atomic_write\n"
        "with atomic_write(sys.argv[1]) as fh:\n"
        "    fh.write(b'half a checkpoint')\n"
        "    fh.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", killed, str(target)], env=script_env())
    assert proc.returncode == -signal.SIGKILL
    (stale,) = tmp_path.glob(".w.npz.*.tmp")
    assert stale.read_bytes() == b"half a checkpoint"
    assert train_main([*SAMPLE, "--iters", "3", "--save", str(target)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_a_full_disk_fails_one_output_and_the_others_are_written(tmp_path, capsys):
    with real_full_disk(tmp_path / "disk", size="64k") as disk:
        disk.fill()
        metrics, save, plot = disk.folder / "m.json", tmp_path / "w.npz", tmp_path / "c.png"
        argv = [*SAMPLE, "--iters", "3", "--metrics-out", str(metrics), "--save", str(save),
                "--plot", str(plot)]  # fmt: skip
        assert status(train_main, argv) == 1
        assert error_line(capsys.readouterr().err, TRAIN) == (
            f"{TRAIN}: error: cannot write {metrics} (No space left on device); "
            f"wrote {save}, {plot}"
        )
        assert load_checkpoint(save).meta["step"] == 3 and plot.stat().st_size > 0
        assert sorted(p.name for p in disk.folder.iterdir()) == ["filler"]


# ------------------------------------------------------------------------------ signals
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_train_save_writes_a_resumable_checkpoint(tmp_path, sig):
    ckpt = tmp_path / "w.npz"
    common = ["--dataset", "mnist-sample", "--dtype", "float64", "--batch-size", "20",
              "--hidden-size", "20", "--optimizer", "momentum", "--lr", "0.05"]  # fmt: skip
    proc = script("train", *common, "--iters", "1000000", "--save", str(ckpt),
                  env=script_env(PYTHONUNBUFFERED="1"))  # fmt: skip
    try:
        for line in proc.stdout:  # training is under way after the first evaluation
            if line.startswith("train acc, test acc | "):
                break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig and "Traceback" not in err
    saved = load_checkpoint(ckpt)
    steps = saved.meta["step"]
    assert saved.meta["interrupted"] is True and steps == len(saved.meta["history"]["loss"])
    assert err.strip().splitlines()[-1] == (
        f"{TRAIN}: interrupted: stopped after step {steps} of 1000000; wrote {ckpt} "
        f"(continue with --resume {ckpt} --iters 1000000)"
    )
    # resumed, it equals a run never interrupted, bit for bit
    end = str(steps + 25)
    rest, whole = tmp_path / "rest.npz", tmp_path / "whole.npz"
    resume = ["--quiet", "--dtype", "float64", "--resume", str(ckpt), "--iters", end]
    assert train_main([*resume, "--save", str(rest)]) == 0
    assert train_main([*common, "--quiet", "--iters", end, "--save", str(whole)]) == 0
    a, b = load_checkpoint(rest), load_checkpoint(whole)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.meta["history"]["loss"] == b.meta["history"]["loss"]


# ------------------------------------------------------------------------- odd numbers
def test_a_nan_at_the_first_step_does_not_blame_the_learning_rate(capsys):
    argv = [*SAMPLE, "--iters", "3", "--weight-init-std", "1e308"]
    assert status(train_main, argv) == 1
    err = capsys.readouterr().err
    assert error_line(err, TRAIN) == (
        f"{TRAIN}: error: loss became nan at step 0; before any update, so not the learning "
        "rate: the initial weights are too large (a smaller --weight-init-std)"
    )
    # numpy's overflow warnings arrive as lines of the command, never with a file path
    assert all(line.startswith(f"{TRAIN}: ") for line in err.splitlines()), err
    assert ".py:" not in err and "RuntimeWarning" not in err


def test_nan_pixels_are_named_before_training(tmp_path):
    (x, t), (xt, tt) = xpnet.load_mnist(dataset="mnist-sample")
    x = x.copy()
    x[3, 7] = np.nan
    net = xpnet.TwoLayerNet(784, 10, 10, seed=0)
    with pytest.raises(ValueError, match="^x_train holds NaN or inf values; clean the data"):
        xpnet.train(net, x, t, xt, tt, iters=2)
    with pytest.raises(ValueError, match="^x_train holds NaN or inf values"):
        xpnet.sweep([{"lr": 0.1}], x, t, xt, tt, iters=2)


@pytest.mark.parametrize(
    ("name", "args", "flag", "value"),
    [
        ("gradient_1d", ["--x0", "nan"], "--x0", "nan"),
        ("gradient_method", ["--lr", "inf"], "--lr", "inf"),
        ("gradient_method", ["--init", "0", "nan"], "--init", "nan"),
    ],
)
def test_figure_scripts_refuse_nan_and_inf(tmp_path, capsys, name, args, flag, value):
    out = tmp_path / "f.png"
    assert status(load_script(name).main, [*args, "--out", str(out)]) == 2
    assert error_line(capsys.readouterr().err, name) == (
        f"{name}: error: argument {flag}: expected a finite number, got '{value}'"
    )
    assert not out.exists()


def test_bench_checks_its_output_before_benchmarking(capsys, monkeypatch):
    bench = load_script("bench")

    def no_work(*args, **kwargs):
        raise AssertionError("benchmarked although --out cannot be written")

    monkeypatch.setattr(bench, "backends", no_work)
    monkeypatch.setattr(bench, "load_data", no_work)
    assert status(bench.main, ["--quick", "--out", "/proc/x.json"]) == 2
    err = capsys.readouterr().err
    assert "error: --out /proc/x.json cannot be written (No such file or directory)" in err


# ---------------------------------------------------------------- IDX files that lie
def _idx_header(shape) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + b"".join(int(n).to_bytes(4, "big") for n in shape)


def _idx_files(folder, train_images: bytes):
    folder.mkdir()
    rng = np.random.default_rng(0)
    parts = [train_images, _idx_header((30,)) + bytes(30),
             _idx_header((10, 28, 28)) + rng.integers(0, 256, 7840, dtype=np.uint8).tobytes(),
             _idx_header((10,)) + bytes(10)]  # fmt: skip
    for name, data in zip(FILES, parts, strict=True):
        (folder / name).write_bytes(data if data[:2] == b"\x1f\x8b" else gzip.compress(data))
    return folder


def test_a_gzip_longer_than_its_header_is_refused_after_one_byte_too_many(tmp_path, capsys):
    # 30 images declared, 20 MB of pixels inside: 20 kB compressed
    bomb = gzip.compress(_idx_header((30, 28, 28)) + bytes(20 * 2**20), compresslevel=1)
    folder = _idx_files(tmp_path / "data", bomb)
    argv = ["--data-dir", str(folder), "--offline", "--no-verify", "--quiet", "--iters", "2"]
    tracemalloc.start()
    try:
        assert status(train_main, argv) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    path = folder / FILES[0]
    assert error_line(capsys.readouterr().err, TRAIN) == (
        f"{TRAIN}: error: {path}: more than 23536 bytes but its header (shape (30, 28, 28)) "
        "implies 23536; the file is truncated or corrupt, replace it with a fresh copy"
    )
    assert peak < 4 * 2**20  # the 20 MB were never held


def test_a_header_claiming_more_than_the_file_can_hold_allocates_nothing(tmp_path):
    path = tmp_path / FILES[0]
    path.write_bytes(gzip.compress(_idx_header((10**7, 28, 28)) + bytes(784)))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"implies 7,840,000,016 bytes, but a \d+-byte gzip"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_a_gzip_shorter_than_its_header_says_is_truncated(tmp_path):
    path = tmp_path / FILES[0]
    rng = np.random.default_rng(0)  # incompressible: the ratio bound does not catch it
    path.write_bytes(gzip.compress(_idx_header((20, 28, 28)) + rng.bytes(784 * 12)))
    with pytest.raises(DataError, match=r"9424 bytes but its header \(shape \(20, 28, 28\)\) "
                       "implies 15696; the file is truncated"):  # fmt: skip
        read_idx(path)
    exact = tmp_path / "exact-idx3-ubyte.gz"
    exact.write_bytes(gzip.compress(_idx_header((12, 28, 28)) + rng.bytes(784 * 12)))
    assert read_idx(exact).shape == (12, 28, 28)

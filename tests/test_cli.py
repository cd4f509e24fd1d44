"""xpnet-train and xpnet-evaluate, in-process, on the bundled sample: results and every
user error (one line on stderr, exit 2 before any work, 1 after it, 130 on Ctrl-C)."""

from __future__ import annotations

import errno
import gzip
import json
import os

import numpy as np
import pytest
from _full_disk import fill_the_disk
from _scripts import load_script

import xpnet
from xpnet.checkpoint import load_checkpoint, save_checkpoint
from xpnet.cli import evaluate as evaluate_cli
from xpnet.cli import evaluate_main, framework, run_cli, train_main, train_nets
from xpnet.cli import train as train_cli
from xpnet.data import FILES

pytestmark = pytest.mark.usefixtures("no_download")


SAMPLE = ["--dataset", "mnist-sample", "--quiet"]


def one_error_line(capsys, prefix: str = "xpnet-train: error: ") -> str:
    err = capsys.readouterr().err
    assert err.startswith(prefix) and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def exit_code(main, argv) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


# ------------------------------------------------------------------------------ results
def test_train_writes_metrics_weights_and_evaluates(tmp_path, capsys):
    metrics, weights = tmp_path / "m.json", tmp_path / "w.npz"
    argv = [*SAMPLE, "--iters", "400", "--metrics-out", str(metrics), "--save", str(weights)]
    assert train_main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "xpnet-train: data: mnist-sample from bundled sample: 4,000 train / 1,000 test images"
    )
    m = json.loads(metrics.read_text())
    assert out[1].startswith(
        f"final: train acc {m['final_train_acc']:.4f}, test acc {m['final_test_acc']:.4f}, "
    )
    assert (m["backend"], m["device"], m["dtype"], m["dataset"]) == (
        "numpy",
        "cpu",
        "float32",
        "mnist-sample",
    )
    assert m["data"]["source"] == "bundled sample" and m["data"]["train"] == 4000
    assert m["config"]["iters"] == 400 and len(m["loss"]) == 400
    assert m["eval_steps"][0] == 0 and m["eval_steps"][-1] == 399
    assert len(m["train_acc"]) == len(m["test_acc"]) == 11  # every 40 steps, and the last
    assert m["final_loss"] == m["loss"][-1] and m["diverged"] is False
    assert 0.6 < m["final_test_acc"] <= 1.0  # 400 steps on real digits (chance: 0.1)
    assert m["samples_per_second"] == pytest.approx(400 * 100 / m["loop_seconds"])

    # both final accuracies are of the saved, final parameters
    net = xpnet.load_weights(weights)
    (x, t), (xt, tt) = xpnet.load_mnist(normalize=False, dataset="mnist-sample")
    assert net.accuracy(x, t, scale=1 / 255) == pytest.approx(m["final_train_acc"], abs=1e-12)
    assert net.accuracy(xt, tt, scale=1 / 255) == pytest.approx(m["final_test_acc"], abs=1e-12)
    meta = load_checkpoint(weights).meta
    assert (meta["dataset"], meta["data_fingerprint"]) == (
        "mnist-sample",
        m["data"]["fingerprint"],
    )
    assert meta["config"]["lr"] == 0.1 and meta["step"] == 400

    # evaluate uses the recorded data set when none is given
    assert evaluate_main([str(weights)]) == 0
    captured = capsys.readouterr()
    assert (
        f"test accuracy on mnist-sample: {m['final_test_acc']:.4f} (1000 images)" in captured.out
    )
    assert "confusion matrix" in captured.out and captured.out.count("(100 images)") == 10
    assert captured.err == ""


def test_first_line_says_chance_accuracy_is_expected(capsys):
    assert train_main(["--dataset", "mnist-sample", "--iters", "2"]) == 0
    out = capsys.readouterr().out
    assert "accuracy near chance (0.1000) in the first epochs is this recipe's expected" in out


def test_mnist_falls_back_to_the_sample_with_one_short_warning(tmp_path, capsys):
    assert train_main(["--iters", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("xpnet-train: warning:") == 1
    assert len(captured.err.splitlines()) == 2
    assert "xpnet-train: data: mnist-sample from bundled sample" in captured.out


def test_same_weights_on_strict_device1(tmp_path):
    w_np, w_strict = tmp_path / "a.npz", tmp_path / "b.npz"
    base = [*SAMPLE, "--iters", "30", "--dtype", "float64"]
    assert train_main([*base, "--save", str(w_np)]) == 0
    assert (
        train_main(
            [
                *base,
                "--backend",
                "array_api_strict",
                "--device",
                "device1",
                "--save",
                str(w_strict),
            ]
        )
        == 0
    )
    a, b = np.load(w_np), np.load(w_strict)
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12)


def test_diverged_run_is_reported_in_line_and_json(tmp_path, monkeypatch, capsys):
    real = train_cli.train

    def flagging(*args, **kwargs):
        history = real(*args, **kwargs)
        history.diverged = True  # what train() reports when the loss climbs far
        return history

    monkeypatch.setattr(train_cli, "train", flagging)
    metrics = tmp_path / "m.json"
    assert train_main([*SAMPLE, "--iters", "5", "--metrics-out", str(metrics)]) == 0
    assert "final (DIVERGED: try a smaller --lr): " in capsys.readouterr().out
    assert json.loads(metrics.read_text())["diverged"] is True


def test_nan_loss_is_one_line_naming_the_flag(tmp_path, capsys):
    metrics = tmp_path / "m.json"
    argv = [*SAMPLE, "--iters", "50", "--lr", "1e30", "--metrics-out", str(metrics)]
    assert exit_code(train_main, argv) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("xpnet-train: error: loss became nan at step ")
    assert "--lr" in err and "Traceback" not in err and not metrics.exists()


# ---------------------------------------------------------------- before any work: exit 2
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "-1"], "argument --lr: expected a positive finite number, got '-1'"),
        (["--iters", "0"], "argument --iters: expected a positive integer, got '0'"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
        (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
        (["--backend", "numpy", "--device", "cuda"], "unknown device 'cuda'"),
        (["--metrics-out", "/nonexistent/dir/m.json"], "folder /nonexistent/dir does not exist"),
        (["--plot", "curves.xyz"], "--plot curves.xyz: matplotlib cannot write .xyz files"),
        (["--hidden-size", str(10**12)], "TiB for the weights alone, more than this machine"),
        (["--dtype", "float16"], "NumPy has no float16 matrix-multiply kernels"),
        (["--dataset", "mnist-sample", "--data-dir", "."], "--data-dir has no effect with"),
        (["--compile", "on"], "--compile on: backend 'numpy' on cpu cannot compile a training"),
        (["--compile", "on", "--gradient", "numerical"], "--compile on compiles the backprop"),
        (["--compile", "yes"], "argument --compile: invalid choice: 'yes'"),
    ],
)
def test_bad_values_are_rejected_before_any_work(argv, message, capsys, monkeypatch):
    def no_data(*a, **k):
        raise AssertionError("data was loaded before the arguments were checked")

    monkeypatch.setattr(framework, "load_data", no_data)
    assert exit_code(train_main, argv) == 2
    assert message in one_error_line(capsys)  # argparse's errors too: no usage lines


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir("/proc"), reason="needs root, /proc")
def test_output_that_passes_permission_bits_but_cannot_be_written(capsys):
    """As root every permission check passes; creating a file in /proc still fails."""
    assert exit_code(train_main, [*SAMPLE, "--metrics-out", "/proc/m.json"]) == 2
    assert "--metrics-out /proc/m.json cannot be written" in one_error_line(capsys)


def test_save_to_a_directory_is_rejected(tmp_path, capsys):
    assert exit_code(train_main, ["--save", str(tmp_path)]) == 2
    assert "is a directory" in one_error_line(capsys)


def test_help_shows_every_default_and_no_none(capsys):
    for main in (train_main, evaluate_main):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text and "(default: False)" not in text
    for main, expected in (
        (
            train_main,
            [
                "steps (default: 10000; conv nets: 20 epochs)",
                "(default: 100)",
                "(default: 0.1; conv nets: 0.001)",
                "(default: 50; simple-convnet: 100)",
                "(default: mlp)",
                "data set (default: mnist)",
                "(default: sigmoid)",
                "(default: numpy)",
                "(default: float32)",
            ],
        ),
        (evaluate_main, ["(default: the one the weights were trained on)"]),
    ):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(e in text for e in expected), text


def _help_entries(text: str) -> list[str]:
    """Each option's entry in ``--help`` output, its wrapped lines joined."""
    entries: list[str] = []
    for line in text.splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif line.startswith("    ") and entries:
            entries[-1] += " " + line
    return [" ".join(e.split()) for e in entries]


def _main_of(command: str):
    from xpnet.cli import sweep_main

    mains = {"xpnet-train": train_main, "xpnet-evaluate": evaluate_main, "xpnet-sweep": sweep_main}
    return mains.get(command) or load_script(command).main


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "xpnet-train",
            [
                "--lr LR learning rate (default: 0.1; conv nets: 0.001)",
                "--quiet no progress bar or epoch lines",
            ],
        ),
        (
            "xpnet-evaluate",
            ["--dtype {float32,float64,float16} parameter dtype (default: float32)"],
        ),
        (
            "xpnet-sweep",
            [
                "--lr LR [LR ...] learning rates (default: 0.1)",
                "--optimizer {sgd,momentum,nesterov,adagrad,rmsprop,adam} "
                "[{sgd,momentum,nesterov,adagrad,rmsprop,adam} ...] update rules (default: sgd)",
                "--iters ITERS steps per config (default: 10000; 2000 with --preset)",
                "--out OUT results.jsonl, summary.csv and figures go here; rerun to resume "
                "(default: runs/sweep)",
                "--momentum MOMENTUM [MOMENTUM ...] (optimizers that take it; default: the "
                "optimizer's own)",
            ],
        ),
        ("gradient_1d", ["--x0 X0 tangent point (default: 5.0)"]),
        ("gradient_2d", ["--out OUT figure to write (default: gradient_2d.png)"]),
        ("gradient_method", ["--init X X start point (default: -3.0 4.0)"]),
    ],
)
def test_help_shows_each_default_once_and_only_where_there_is_one(command, expected, capsys):
    pytest.importorskip("matplotlib")
    assert exit_code(_main_of(command), ["--help"]) == 0
    entries = _help_entries(capsys.readouterr().out)
    for e in expected:
        assert e in entries, (e, entries)
    for entry in entries:
        assert entry.count("default") <= 1, entry
        assert "(default: None)" not in entry and "(default: False)" not in entry, entry
        assert "(default: [" not in entry, entry  # a list default reads as its values


# ------------------------------------------------------------------ after it: exit 1/130
def test_out_of_memory_is_one_line(monkeypatch, capsys):
    def huge(*args, **kwargs):
        raise MemoryError("Unable to allocate 58.4 GiB for an array with shape (784, 10000000)")

    monkeypatch.setattr(train_nets, "TwoLayerNet", huge)
    assert exit_code(train_main, [*SAMPLE, "--hidden-size", "1000"]) == 1
    err = one_error_line(capsys)
    assert "out of memory while building the net (Unable to allocate 58.4 GiB" in err
    assert "use a smaller --hidden-size" in err and "nothing written" in err


def test_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"the user's old weights")
    fill_the_disk(monkeypatch)
    argv = [*SAMPLE, "--iters", "3", "--save", str(weights), "--metrics-out", "m.json"]
    assert exit_code(train_main, argv) == 1
    err = one_error_line(capsys)
    # every output is tried; the one line names each that failed
    assert (
        f"cannot write {weights} (No space left on device); "
        "cannot write m.json (No space left on device); nothing written"
    ) in err
    assert weights.read_bytes() == b"the user's old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temporaries


def _interrupt_at_second_evaluation(monkeypatch):
    real = train_cli.train

    def interrupted(*args, on_epoch, **kwargs):
        def stop(history):
            on_epoch(history)
            if len(history.eval_steps) == 2:
                raise KeyboardInterrupt

        return real(*args, on_epoch=stop, **kwargs)

    monkeypatch.setattr(train_cli, "train", interrupted)


def test_ctrl_c_during_training(tmp_path, monkeypatch, capsys):
    _interrupt_at_second_evaluation(monkeypatch)
    metrics = tmp_path / "m.json"
    assert exit_code(train_main, [*SAMPLE, "--iters", "400", "--metrics-out", str(metrics)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "xpnet-train: interrupted: stopped after step 41 of 400; nothing written"
    assert not metrics.exists()


def test_ctrl_c_while_writing_names_what_was_written(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(framework, "atomic_write", interrupted)  # the metrics JSON, after --save
    weights, metrics = tmp_path / "w.npz", tmp_path / "m.json"
    argv = [*SAMPLE, "--iters", "3", "--save", str(weights), "--metrics-out", str(metrics)]
    assert exit_code(train_main, argv) == 130
    assert capsys.readouterr().err.strip().endswith(f"; wrote {weights}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_ctrl_c_during_evaluation(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "w.npz"
    assert train_main([*SAMPLE, "--iters", "3", "--save", str(weights)]) == 0
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_cli, "format_report", interrupted)
    assert exit_code(evaluate_main, [str(weights)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "xpnet-evaluate: interrupted: stopped while evaluating; nothing written"


# ---------------------------------------------------------------------------------- data
def _idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def _custom_data(folder):
    rng = np.random.default_rng(0)
    folder.mkdir()
    shapes = [(30, 28, 28), (30,), (10, 28, 28), (10,)]
    for name, shape in zip(FILES, shapes, strict=True):
        high = 256 if len(shape) == 3 else 10
        (folder / name).write_bytes(_idx_gz(rng.integers(0, high, shape)))
    return folder


def test_data_dir_is_the_only_place_read(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["--dataset", "fashion-mnist", "--data-dir", str(empty), "--offline", "--quiet"]
    assert exit_code(train_main, argv) == 1
    err = one_error_line(capsys)
    assert f"--data-dir {empty} lacks the fashion-mnist files" in err
    assert all(name in err for name in FILES) and "--offline" in err


def test_custom_data_needs_no_verify_and_says_where_it_came_from(tmp_path, capsys):
    folder = _custom_data(tmp_path / "custom")
    argv = ["--data-dir", str(folder), "--offline", "--quiet", "--iters", "2"]
    assert exit_code(train_main, argv) == 1
    err = one_error_line(capsys)
    assert "does not match the published" in err and "pass --no-verify to trust it" in err
    assert train_main([*argv, "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert f"xpnet-train: data: mnist from {folder}: 30 train / 10 test images" in out


def test_no_verify_keeps_the_structure_checks(tmp_path, capsys):
    folder = _custom_data(tmp_path / "custom")
    (folder / FILES[3]).write_bytes(_idx_gz(np.full(10, 12)))  # label 12 of 0..9
    argv = ["--data-dir", str(folder), "--offline", "--no-verify", "--quiet", "--iters", "2"]
    assert exit_code(train_main, argv) == 1
    assert "label 12 outside 0..9" in one_error_line(capsys)


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_warns_when_told_another_data_set(tmp_path, capsys):
    weights = tmp_path / "w.npz"
    assert train_main([*SAMPLE, "--iters", "3", "--save", str(weights)]) == 0
    capsys.readouterr()
    assert evaluate_main([str(weights), "--dataset", "mnist"]) == 0
    err = capsys.readouterr().err
    assert (
        f"xpnet-evaluate: warning: {weights} was trained on mnist-sample, evaluating on "
        "mnist as asked" in err
    )


def test_evaluate_rejects_bad_weights_files(tmp_path, capsys):
    missing = tmp_path / "none.npz"
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00\x01 not a zip")
    text = tmp_path / "text.npz"
    text.write_text("W1,b1\n1,2\n")
    shapes = tmp_path / "shapes.npz"
    np.savez(shapes, W1=np.zeros((784, 5)), b1=np.zeros(5), W2=np.zeros((6, 10)), b2=np.zeros(10))
    wrong_input = tmp_path / "in.npz"
    np.savez(
        wrong_input, W1=np.zeros((100, 5)), b1=np.zeros(5), W2=np.zeros((5, 10)), b2=np.zeros(10)
    )
    objects = tmp_path / "obj.npz"
    np.savez(objects, W1=np.array([{"a": 1}], dtype=object))
    bare = tmp_path / "bare.npz"
    with open(bare, "wb") as fh:
        np.save(fh, np.zeros(3))
    tanh = tmp_path / "tanh.npz"
    np.savez(
        tanh,
        W1=np.zeros((784, 5)),
        b1=np.zeros(5),
        W2=np.zeros((5, 10)),
        b2=np.zeros(10),
        activation=np.array("tanh"),
    )
    nan = tmp_path / "nan.npz"
    net = xpnet.TwoLayerNet(784, 5, 10, seed=0)
    net.params["W1"] = net.params["W1"] * np.nan
    save_checkpoint(nan, net)
    cases = [
        (missing, "does not exist (write one with: xpnet-train --save"),
        (tmp_path, "is a directory; give the .npz weights file inside it"),
        (junk, "is not a zip archive, not an .npz weights file"),
        (text, "is a text file, not an .npz weights file"),
        (shapes, "layer shapes do not chain"),
        (wrong_input, "input size is 100, but mnist-sample images have 784 pixels"),
        (objects, "holds Python objects, not plain arrays"),
        (bare, "holds a single array (.npy), not named parameters"),
        (tanh, "got 'tanh'"),
        (nan, "W1 holds 3920 NaN/inf values of 3920"),
    ]
    for path, message in cases:
        assert exit_code(evaluate_main, [str(path), "--dataset", "mnist-sample"]) == 2
        assert message in one_error_line(capsys, "xpnet-evaluate: error: "), path
    assert junk.read_bytes() == b"\x00\x01 not a zip"  # nothing the user had is changed


def test_weights_round_trip(backend, tmp_path):
    net = xpnet.TwoLayerNet(12, 5, 3, backend=backend, seed=4, activation="relu")
    path = xpnet.save_weights(net, tmp_path / "w.npz")
    again = xpnet.load_weights(path, backend=backend)
    assert again.activation == "relu" and again.sizes == (12, 5, 3)
    for k in net.params:
        np.testing.assert_array_equal(
            backend.to_numpy(again.params[k]), backend.to_numpy(net.params[k])
        )


# ------------------------------------------------------------------------- plots, figures
def test_train_plot_draws_the_recorded_accuracies(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from xpnet import plots

    drawn = {}
    real = plots.plot_training_curves

    def spy(history, **kwargs):
        fig = real(history, **kwargs)
        drawn["fig"], drawn["history"] = fig, history
        return fig

    monkeypatch.setattr(plots, "plot_training_curves", spy)
    png, svg, metrics = tmp_path / "curves.png", tmp_path / "c.svg", tmp_path / "m.json"
    argv = [*SAMPLE, "--iters", "80", "--plot", str(png), "--metrics-out", str(metrics)]
    assert train_main(argv) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert oct(png.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    m = json.loads(metrics.read_text())
    acc_ax = drawn["fig"].axes[0]
    assert acc_ax.get_xlabel() == "epochs" and acc_ax.get_ylabel() == "accuracy"
    train_line, test_line = acc_ax.get_lines()[:2]
    np.testing.assert_allclose(train_line.get_ydata(), m["train_acc"])
    np.testing.assert_allclose(test_line.get_ydata(), m["test_acc"])
    assert train_main([*SAMPLE, "--iters", "2", "--plot", str(svg)]) == 0
    assert b"<svg" in svg.read_bytes()[:500]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_figure_script_checks_its_output_first(capsys):
    pytest.importorskip("matplotlib")
    script = load_script("gradient_1d")
    assert exit_code(script.main, ["--out", "/nonexistent/x.png"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "gradient_1d: error: --out /nonexistent/x.png: folder /nonexistent does not exist\n"
    )


# ------------------------------------------------------------- shared error handling
def test_library_warnings_are_one_line_in_flag_wording(monkeypatch, capsys):
    real = train_cli.train

    def warning(*args, **kwargs):
        import warnings

        warnings.warn("loss rose from 2.30 to 36.1: lr=100 is too large", UserWarning, 2)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_cli, "train", warning)
    assert train_main([*SAMPLE, "--iters", "2"]) == 0
    err = capsys.readouterr().err
    assert err == "xpnet-train: warning: loss rose from 2.30 to 36.1: --lr 100 is too large\n"


def test_run_cli_gives_any_script_the_same_exits(capsys):
    @run_cli("bench")
    def interrupted(argv=None):
        raise KeyboardInterrupt

    @run_cli("bench")
    def disk_full(argv=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out.json")

    for main, code, line in (
        (interrupted, 130, "bench: interrupted: stopped; nothing written"),
        (disk_full, 1, "bench: error: out.json: No space left on device; nothing written"),
    ):
        assert exit_code(main, []) == code
        assert capsys.readouterr().err.strip() == line


def test_float16_stays_available_where_it_is_fast(tmp_path, capsys):
    pytest.importorskip("torch")
    metrics = tmp_path / "m.json"
    argv = [
        *SAMPLE,
        "--backend",
        "torch",
        "--dtype",
        "float16",
        "--iters",
        "3",
        "--metrics-out",
        str(metrics),
    ]
    assert train_main(argv) == 0
    assert json.loads(metrics.read_text())["dtype"] == "float16"


@pytest.mark.slow
def test_ctrl_c_in_a_real_process(tmp_path):
    """SIGINT delivered to scripts/train.py: one line, exit 130, no output file."""
    import signal
    import subprocess
    import sys

    from _scripts import SCRIPTS

    metrics = tmp_path / "m.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / "train.py"),
            "--dataset",
            "mnist-sample",
            "--iters",
            "1000000",
            "--metrics-out",
            str(metrics),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().startswith("xpnet-train: data: mnist-sample")
    assert proc.stdout.readline().startswith("xpnet-train: backend numpy")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    last = err.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith("xpnet-train: interrupted: stopped ")
    assert last.endswith(" of 1000000; nothing written")
    assert not metrics.exists()


def test_resume_continues_bit_for_bit(tmp_path):
    common = [
        "--dataset",
        "mnist-sample",
        "--dtype",
        "float64",
        "--batch-size",
        "50",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--hidden-sizes",
        "30,20",
        "--activation",
        "relu",
        "--weight-init-std",
        "he",
        "--quiet",
    ]
    whole, part, rest = tmp_path / "whole.npz", tmp_path / "part.npz", tmp_path / "rest.npz"
    assert train_main([*common, "--iters", "130", "--save", str(whole)]) == 0
    assert train_main([*common, "--iters", "70", "--save", str(part)]) == 0
    assert (
        train_main(
            [
                "--dataset",
                "mnist-sample",
                "--dtype",
                "float64",
                "--quiet",
                "--resume",
                str(part),
                "--iters",
                "130",
                "--save",
                str(rest),
            ]
        )
        == 0
    )
    a, b = xpnet.load_checkpoint(whole), xpnet.load_checkpoint(rest)
    assert a.sizes == b.sizes == (784, 30, 20, 10)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    for k in a.optimizer_state:
        np.testing.assert_array_equal(a.optimizer_state[k], b.optimizer_state[k])
    assert a.meta["history"]["loss"] == b.meta["history"]["loss"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--optimizer", "sgd", "--momentum", "0.9"],
            "--momentum does not apply to --optimizer sgd",
        ),
        (["--optimizer", "adam", "--beta1", "1.5"], "beta1 must be in [0, 1)"),
        (["--hidden-sizes", "100,x"], "expected sizes like 100,100,100"),
        (["--weight-init-std", "lecun"], "expected a positive number or one of"),
    ],
)
def test_optimizer_and_net_flags_are_checked(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        train_main(["--dataset", "mnist-sample", "--iters", "2", "--quiet", *args])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_train_validation_and_early_stopping(tmp_path, capsys):
    metrics = tmp_path / "m.json"
    args = ["--dataset", "mnist-sample", "--iters", "300", "--batch-size", "100", "--lr", "0.01",
            "--validation", "0.2", "--patience", "1", "--quiet", "--dtype", "float64",
            "--metrics-out", str(metrics)]  # fmt: skip
    assert train_main(args) == 0
    m = json.loads(metrics.read_text())
    assert m["stopped_step"] is not None and m["best_step"] < m["stopped_step"] < 299
    assert m["test_acc"] == [] and 0 < m["final_test_acc"] <= 1
    at = m["eval_steps"].index(m["best_step"])
    assert m["final_val_acc"] == m["val_acc"][at]
    assert f"stopped early at step {m['stopped_step'] + 1}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        train_main(["--dataset", "mnist-sample", "--iters", "2", "--patience", "3"])
    assert info.value.code == 2 and "give --validation too" in capsys.readouterr().err

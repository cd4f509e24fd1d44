"""xpnet-sweep against what goes wrong overnight: a torn or foreign results.jsonl, a full
disk, a closed pipe or an ASCII-only terminal, two runs into one folder, grids that cannot
fit, values given twice, SIGTERM. Real files, real processes where it takes one."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import tracemalloc

import pytest
from _cli_runs import SWEEP, error_line, script, script_env, status, wait_for
from _full_disk import real_full_disk

from xpnet.cli import sweep as sweep_cli
from xpnet.cli import sweep_main
from xpnet.cli.sweep_results import read_results

PROG = "xpnet-sweep"


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_bytes().splitlines()]


def _lrs(out) -> list[float]:
    return sorted(r["config"]["lr"] for r in _records(out))


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained although the run should have stopped before")

    monkeypatch.setattr(sweep_cli, "sweep", refuse)
    monkeypatch.setattr(sweep_cli, "load", refuse)


@pytest.fixture
def no_figures(monkeypatch):
    """Figures are not what these tests look at (drawing them is most of a small sweep)."""
    monkeypatch.setattr(sweep_cli, "save_sweep_figures", lambda *args, **kwargs: [])


# ------------------------------------------------------------------ results.jsonl on rerun
def test_a_torn_last_line_is_cut_off_before_training_and_nothing_is_lost(
    tmp_path, capsys, no_figures
):
    out = tmp_path / "run"
    assert sweep_main([*SWEEP, "--lr", "0.1", "--out", str(out)]) == 0
    whole = (out / "results.jsonl").read_bytes()
    with open(out / "results.jsonl", "ab") as fh:  # a write killed half-way
        fh.write(b'{"config": {"lr": 0.2, "hidden_si')
    capsys.readouterr()
    assert sweep_main([*SWEEP, "--lr", "0.1", "0.2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert warnings == [
        f"{PROG}: warning: {out / 'results.jsonl'} ended in a torn line (33 bytes of a "
        "write cut short); removed it, that config trains again"
    ]
    assert "2 configs, 1 already in" in captured.out and "1 to train" in captured.out
    data = (out / "results.jsonl").read_bytes()
    assert data.startswith(whole) and data.endswith(b"\n")  # the finished record kept
    assert _lrs(out) == [0.1, 0.2]
    assert len((out / "summary.csv").read_text().splitlines()) == 3


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path, capsys, no_figures):
    out = tmp_path / "run"
    args = [*SWEEP, "--lr", "0.1", "0.2", "--out", str(out)]
    assert sweep_main(args) == 0
    path = out / "results.jsonl"
    path.write_bytes(path.read_bytes()[:-1])
    capsys.readouterr()
    assert sweep_main(args) == 0
    captured = capsys.readouterr()
    assert f"{path}: its last record lacked its newline; added it" in captured.err
    assert "2 already in" in captured.out and "0 to train" in captured.out
    assert len(_records(out)) == 2


def test_lines_that_are_not_records_are_named_by_number_and_skipped(tmp_path, capsys, no_figures):
    out = tmp_path / "run"
    args = [*SWEEP, "--lr", "0.1", "0.2", "--out", str(out)]
    assert sweep_main(args) == 0
    good = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    bad_types = json.loads(good[1])
    bad_types["history"]["loss"] = "low"
    bad_config = json.loads(good[1])
    bad_config["config"]["optimizer"] = "lbfgs"
    (out / "results.jsonl").write_bytes(
        good[0]
        + b"\xff\xfe not text\n"
        + json.dumps(bad_types).encode() + b"\n"
        + b"[1, 2]\n"
        + json.dumps(bad_config).encode() + b"\n"
    )  # fmt: skip
    capsys.readouterr()
    assert sweep_main(args) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    notes = [line for line in captured.err.splitlines() if "warning" in line]
    path = out / "results.jsonl"
    assert notes == [
        f"{PROG}: warning: {path} line 2: not UTF-8; skipped (its config trains again)",
        f"{PROG}: warning: {path} line 3: wrong types in history loss; skipped (its config "
        "trains again)",
        f"{PROG}: warning: {path} line 4: not a record (an object with a config); skipped "
        "(its config trains again)",
        f"{PROG}: warning: {path} line 5: its config is not one this version trains (unknown "
        "optimizer 'lbfgs'; choose one of: sgd, momentum, nesterov, adagrad, rmsprop, adam); "
        "skipped (its config trains again)",
    ]
    assert "1 already in" in captured.out and "1 to train" in captured.out
    assert sorted(r.config["lr"] for r in read_results(path).values()) == [0.1, 0.2]


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_results_as_a_folder_or_a_link_is_refused_before_any_work(
    tmp_path, capsys, monkeypatch, kind
):
    out = tmp_path / "run"
    out.mkdir()
    other = tmp_path / "other.jsonl"
    other.write_text("someone else's lines\n")
    if kind == "directory":
        (out / "results.jsonl").mkdir()
        expected = f"--out {out}: results.jsonl is not a file; move it away"
    else:
        (out / "results.jsonl").symlink_to(other)
        expected = (
            f"--out {out}: results.jsonl is a symbolic link (to {other}); results are "
            "appended to their own file: remove the link, or copy the file there"
        )
    _no_training(monkeypatch)
    assert status(sweep_main, [*SWEEP, "--lr", "0.1", "--out", str(out)]) == 2
    assert error_line(capsys.readouterr().err, PROG) == f"{PROG}: error: {expected}"
    assert other.read_text() == "someone else's lines\n"
    assert not (out / "run.json").exists()


# ----------------------------------------------------------------- write failures at the end
def test_a_real_full_disk_keeps_every_finished_record_and_leaves_no_empty_file(
    tmp_path, capsys, monkeypatch
):
    with real_full_disk(tmp_path / "disk") as disk:
        out = disk.folder / "run"
        assert sweep_main([*SWEEP, "--lr", "0.1", "--out", str(out)]) == 0
        (out / "summary.csv").unlink()
        appended = []

        def append_then_fill(path, record):  # another program fills the disk mid-sweep
            sweep_cli.append_result.__wrapped__(path, record)
            appended.append(record)
            if len(appended) == 1:
                disk.fill()  # left: the rest of results.jsonl's last block (~3.6 kB)

        append_then_fill.__wrapped__ = sweep_cli.append_result
        monkeypatch.setattr(sweep_cli, "append_result", append_then_fill)
        lrs = ["0.1", *(f"0.{i:02d}" for i in range(11, 23))]
        args = [*SWEEP, "--lr", *lrs, "--out", str(out)]
        capsys.readouterr()
        assert status(sweep_main, args) == 1
        line = error_line(capsys.readouterr().err, PROG)
        kept = len(_records(out))
        assert 2 < kept < 13, "the disk filled up part-way through the records"
        assert line == (
            f"{PROG}: error: {out / 'results.jsonl'}: No space left on device; {kept} of 13 "
            f"configs finished, kept in {out / 'results.jsonl'} (rerun to resume)"
        )
        assert (out / "results.jsonl").read_bytes().endswith(b"\n")  # no torn line
        # a rerun on the full disk: refused before training, with the estimate
        assert status(sweep_main, args) == 2
        line = error_line(capsys.readouterr().err, PROG)
        assert line.startswith(f"{PROG}: error: {13 - kept} configs to train of 5 steps: "
                               "results.jsonl would need about 0.0 MiB, but ")  # fmt: skip
        # nothing left to train: the summary and the figure fail, the results stay
        one = [*SWEEP, "--lr", "0.1", "--out", str(out)]
        assert status(sweep_main, one) == 1
        line = error_line(capsys.readouterr().err, PROG)
        assert line == (
            f"{PROG}: error: cannot write {out / 'summary.csv'} (No space left on device); "
            f"cannot write {out / 'curves.png'} (No space left on device); "
            f"wrote {out / 'results.jsonl'}"
        )
        assert sorted(p.name for p in out.iterdir()) == [
            ".lock",
            "curves.png",
            "results.jsonl",
            "run.json",
        ]  # fmt: skip: no empty summary.csv, no temporaries
        disk.free()
        assert sweep_main(args) == 0  # the rerun trains only what is missing
        assert f"13 configs, {kept} already in" in capsys.readouterr().out
        assert _lrs(out) == sorted(float(v) for v in lrs)


def test_a_folder_appearing_in_place_of_an_output_costs_only_that_output(
    tmp_path, capsys, monkeypatch, no_figures
):
    out = tmp_path / "run"
    real_append = sweep_cli.append_result

    def append_then_block(path, record):  # another program takes the summary's name
        real_append(path, record)
        (out / "summary.csv").mkdir(exist_ok=True)

    monkeypatch.setattr(sweep_cli, "append_result", append_then_block)
    assert status(sweep_main, [*SWEEP, "--lr", "0.1", "0.2", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert error_line(captured.err, PROG) == (
        f"{PROG}: error: cannot write {out / 'summary.csv'} (Is a directory); "
        f"wrote {out / 'results.jsonl'}"
    )
    assert "test acc (mean ± std)" in captured.out  # the table is still printed
    assert _lrs(out) == [0.1, 0.2]
    assert not list(out.glob(".summary.csv.*"))


def test_an_output_that_is_a_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    (out / "curves.png").mkdir(parents=True)
    _no_training(monkeypatch)
    assert status(sweep_main, [*SWEEP, "--lr", "0.1", "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err, PROG)
    assert line == f"{PROG}: error: --out {out / 'curves.png'} is a directory; give a file name"


def test_a_closed_pipe_costs_no_result(tmp_path):
    """``xpnet-sweep ... | head -1``: the reader goes after the first line."""
    out = tmp_path / "run"
    sweep = script(
        "sweep", *SWEEP, "--lr", "0.1", "0.2", "--out", str(out),
        env=script_env(PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    head = subprocess.Popen(["head", "-1"], stdin=sweep.stdout, stdout=subprocess.PIPE)
    sweep.stdout.close()  # only head reads it now
    first, _ = head.communicate(timeout=120)
    with sweep.stderr:
        err = sweep.stderr.read()
    assert sweep.wait(timeout=120) == 1
    assert first.decode().startswith(f"{PROG}: data: mnist-sample")
    files = ", ".join(str(out / f) for f in ("results.jsonl", "summary.csv", "curves.png"))
    assert error_line(err, PROG) == (
        f"{PROG}: error: standard output closed early (Broken pipe), the rest of it "
        f"dropped; wrote {files}"
    )
    assert err.strip().splitlines()[-1].startswith(f"{PROG}: error: ")
    assert _lrs(out) == [0.1, 0.2] and (out / "summary.csv").stat().st_size > 0


def test_an_ascii_only_terminal_gets_plain_characters(tmp_path):
    out = tmp_path / "run"
    env = script_env(PYTHONIOENCODING="ascii", LC_ALL="C", LANG="C")
    proc = script("sweep", *SWEEP, "--lr", "0.1", "--out", str(out), env=env)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "test acc (mean +- std)" in stdout and "0.1000 +- 0.0000" in stdout
    assert "Traceback" not in stderr
    assert (out / "summary.csv").stat().st_size > 0


# -------------------------------------------------------------------- one run per folder
def test_a_second_run_into_a_busy_folder_refuses_or_waits(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = [*SWEEP, "--lr", "0.1", "0.2", "--iters", "100", "--out", str(out)]
    first = script("sweep", *args)
    lock = out / ".lock"
    wait_for(lambda: lock.exists() and lock.read_text().startswith(f"{first.pid} "),
             what="the first run to lock its folder")  # fmt: skip
    os.kill(first.pid, signal.SIGSTOP)  # holds the lock for as long as the test needs
    try:
        with monkeypatch.context() as m:
            _no_training(m)
            assert status(sweep_main, args) == 2
        line = error_line(capsys.readouterr().err, PROG)
        assert line.startswith(f"{PROG}: error: --out {out} is in use by another run (process "
                               f"{first.pid} on ")  # fmt: skip
        assert line.endswith("; wait for it to end, give another --out, or add --wait")
        log = tmp_path / "waiting.err"
        with open(log, "w") as err:
            waiting = script("sweep", *args, "--wait", stderr=err)
        wait_for(lambda: f"{PROG}: waiting: --out {out} is in use by another run (process "
                 f"{first.pid} on " in log.read_text(), what="the waiting line")  # fmt: skip
        assert waiting.poll() is None
    finally:
        first.kill()  # a crash: the system drops its lock
        first.communicate(timeout=30)
    waiting.communicate(timeout=120)
    assert waiting.returncode == 0, log.read_text()
    assert _lrs(out) == [0.1, 0.2]


def test_values_given_twice_train_once_and_are_reported_once(tmp_path, capsys, no_figures):
    out = tmp_path / "run"
    args = [*SWEEP, "--lr", "0.1", "0.1", "--hidden-size", "50", "050", "--out", str(out)]
    assert sweep_main(args) == 0
    captured = capsys.readouterr()
    assert (
        f"{PROG}: warning: 3 of 4 configs repeat another (values given twice); each config "
        "trains once"
    ) in captured.err
    assert "1 configs, 0 already in" in captured.out
    assert len(_records(out)) == 1
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert len(rows) == 1 and rows[0]["seeds"] == "1"


# ------------------------------------------------------------------------ size before work
def test_a_grid_whose_records_cannot_fit_is_refused_before_it_is_built(
    tmp_path, capsys, monkeypatch
):
    _no_training(monkeypatch)
    tracemalloc.start()
    try:
        argv = [*SWEEP, "--iters", "10000", "--seeds", "100000000", "--out", str(tmp_path)]
        code = status(sweep_main, argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2
    line = error_line(capsys.readouterr().err, PROG)
    assert line.startswith(
        f"{PROG}: error: 100,000,000 configs (the grid times --seeds 100000000) of 10,000 "
        "steps: their records need about 51.3 TiB of memory, more than this machine's "
    )
    assert line.endswith("; use fewer values, --seeds or --iters")
    assert peak < 20 * 2**20
    assert list(tmp_path.iterdir()) == []


def test_a_model_larger_than_memory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    code = status(sweep_main, [*SWEEP, "--hidden-size", "1000000000", "--out", str(tmp_path)])
    assert code == 2
    line = error_line(capsys.readouterr().err, PROG)
    assert line.startswith(f"{PROG}: error: hidden layers 1000000000 need about ")
    assert line.endswith("; use smaller --hidden-size/--hidden-sizes")


# -------------------------------------------------------------------------------- signals
def test_sigterm_keeps_what_finished_with_the_ctrl_c_line(tmp_path):
    out = tmp_path / "run"
    lrs = ["0.05", "0.1", "0.2", "0.5"]
    proc = script("sweep", *SWEEP, "--iters", "400", "--lr", *lrs, "--max-models", "1",
                  "--out", str(out))  # fmt: skip
    results = out / "results.jsonl"
    wait_for(lambda: results.exists() and results.read_bytes().count(b"\n") >= 1,
             what="the first finished config")  # fmt: skip
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    kept = len(_records(out))
    assert 1 <= kept < 4, "stopped part-way"
    assert err.strip().splitlines()[-1] == (
        f"{PROG}: interrupted: stopped while training; {kept} of 4 configs finished, kept in "
        f"{results} (rerun to resume)"
    )

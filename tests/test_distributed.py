"""Sweeps on a real Dask cluster: worker processes on 127.0.0.1, started by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from _data import blobs  # noqa: E402

from xpnet.distributed import SweepTaskError, connect, sweep_on_dask  # noqa: E402
from xpnet.sweeps import grid, normalize, plan_groups, sweep  # noqa: E402

KW = {"iters": 40, "batch_size": 25, "eval_interval": 12}
F64 = {"backend": "numpy", "dtype": "float64"}


@pytest.fixture(scope="module")
def data():
    x, t = blobs(400, d=32, noise=70)
    return x[:300], t[:300], x[300:], t[300:]


@pytest.fixture(scope="module")
def client():
    with connect("local:2") as c:
        yield c


def _same(got, ref):
    """Record by record: config, divergence and every history value (not the timing).

    Losses to 1e-12: a config that ends up in another stack (a failing neighbour removed)
    meets its batch in a matrix product of another width, which rounds differently."""
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        a, b = g.as_dict(), r.as_dict()
        del a["history"]["loop_seconds"], b["history"]["loop_seconds"]
        np.testing.assert_allclose(a["history"].pop("loss"), b["history"].pop("loss"),
                                   rtol=1e-12, atol=0)  # fmt: skip
        assert a == b


def test_records_equal_the_in_process_sweep(client, data):
    configs = grid(lr=[0.3, 1.0], seed=[0, 1], weight_decay=[0.0, 0.01])
    seen = []
    got = sweep(configs, *data, client=client, max_models=3, **F64, **KW,
                on_result=lambda i, r: seen.append((i, r.config["lr"])))  # fmt: skip
    ref = sweep(configs, *data, max_models=3, **F64, **KW)
    assert len(plan_groups(configs, input_size=32, output_size=10, max_models=3)) == 3
    _same(got, ref)
    assert ref[0].history.eval_steps == [0, 12, 24, 36, 39]
    assert sorted(seen) == [(i, c["lr"]) for i, c in enumerate(configs)]


def test_halving_reaches_the_tasks_and_matches_in_process(client, data):
    configs = grid(lr=[0.3, 1.0, 1e6, 0.5, 0.1])
    got = sweep(configs, *data, client=client, halving=[12, 24], **F64, **KW)
    ref = sweep(configs, *data, halving=[12, 24], **F64, **KW)
    # 4 live members -> 2 -> 1; the diverging one goes at the first rung, as diverged
    assert sorted(str(r.stopped_at) for r in ref) == ["12", "12", "24", "None", "None"]
    assert ref[2].diverged and ref[2].stopped_at is None
    _same(got, ref)  # stopped_at included


def test_validation_patience_kept_params_and_halving_across_stacks_match_in_process(client, data):
    configs = grid(lr=[0.1, 0.3, 1.0, 3.0, 0.03], seed=[0, 1])
    kw = {**F64, **KW, "max_models": 3, "halving": [12], "validation": 0.25, "patience": 2,
          "keep_params": True}  # fmt: skip
    seen = []
    got = sweep(configs, *data, client=client, on_result=lambda i, r: seen.append(i), **kw)
    ref = sweep(configs, *data, **kw)
    _same(got, ref)
    assert sorted(seen) == list(range(10))
    assert {str(r.stopped_at) for r in ref} == {"12", "None"}  # ranked across 4 stacks
    assert any(r.history.stopped_step is not None for r in ref)
    for g, r in zip(got, ref, strict=True):
        for k, v in r.params.items():
            np.testing.assert_allclose(g.params[k], v, rtol=1e-12, atol=1e-15)


def test_the_task_function_trains_one_segment_and_resumes_a_paused_stack(data):
    from xpnet.distributed import worker

    configs = [normalize(c) for c in grid(lr=[0.3, 1.0, 0.5])]
    kw = {"backend_name": "numpy", "dtype": "float64", "family": "segments", **KW}
    first = worker.run_stack_task(configs, [4, 5, 6], data, "token-segments", resume=None,
                                  keep=None, stop=12, **kw)  # fmt: skip
    assert first["members"] == first["live"] == [4, 5, 6] and not first["done"]
    assert all(d["history"]["eval_steps"] == [0, 12] for d, _, _ in first["records"].values())
    assert "segments" in worker._STACKS  # parked on this worker for the next segment
    rest = worker.run_stack_task(configs, [4, 5, 6], data, "token-segments", resume=12,
                                 keep=[4, 6], stop=None, **kw)  # fmt: skip
    # rebuilt elsewhere (nothing parked): the same records, trained to the rung again
    worker._STACKS.clear()
    again = worker.run_stack_task(configs, [4, 5, 6], data, "token-segments", resume=12,
                                  keep=[4, 6], stop=None, **kw)  # fmt: skip
    assert rest["done"] and rest["members"] == []
    assert [d["stopped_at"] for d, _, _ in rest["records"].values()] == [None, 12, None]
    ref = sweep(configs[::2], *data, **F64, **KW)
    for i, r in zip((4, 6), ref, strict=True):
        for out in (rest, again):
            np.testing.assert_allclose(out["records"][i][0]["history"]["loss"], r.history.loss,
                                       rtol=1e-12)  # fmt: skip
    bad = worker.run_stack_task([{**configs[0], "lr": -1.0}], [0], data, "token-segments",
                                resume=None, keep=None, stop=None, **kw)  # fmt: skip
    assert bad["error"].startswith("ValueError: lr must be a positive finite number")


def test_a_failing_config_is_named_and_the_others_finish(client, data):
    good = [normalize(c) for c in grid(lr=[0.3, 1.0, 0.5])]
    # lr -1 passes through sweep_on_dask unchecked: the worker's run_group rejects it
    configs = [good[0], {"lr": -1.0}, good[1], good[2]]
    seen = []
    with pytest.raises(SweepTaskError) as info:
        sweep_on_dask(client, configs, [[0, 1, 2], [3]], data, iters=KW["iters"],
                      batch_size=25, eval_interval=12, backend_name="numpy", dtype="float64",
                      on_result=lambda i, r: seen.append(i))  # fmt: skip
    err = info.value
    [(index, config, message)] = err.failures
    assert (index, config) == (1, {"lr": -1.0})
    assert message.startswith("ValueError: lr must be a positive finite number")
    assert str(err).splitlines()[1].startswith('config 1 {"lr": -1.0}: ValueError: lr must')
    assert sorted(seen) == [0, 2, 3] and err.records[1] is None
    ref = sweep(good, *data, **F64, **KW)
    _same([err.records[i] for i in (0, 2, 3)], ref)


def test_a_worker_side_error_is_retried_then_reported_per_config(client, data):
    # not a config error: Dask reruns the task `retries` times, then each config alone
    configs = [normalize(c) for c in grid(lr=[0.3, 1.0])]
    with pytest.raises(SweepTaskError) as info:
        sweep_on_dask(client, configs, [[0, 1]], data, iters=2, batch_size=25,
                      backend_name="no_such_backend", retries=1)  # fmt: skip
    assert [f[:2] for f in info.value.failures] == [(0, configs[0]), (1, configs[1])]
    assert all(f[2].startswith("BackendError: unknown backend 'no_such_backend'")
               for f in info.value.failures)  # fmt: skip
    assert info.value.records == [None, None]


def _one_worker_cluster(**kwargs):
    return distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                    dashboard_address=None, host="127.0.0.1",
                                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                    **kwargs)  # fmt: skip


def test_without_a_backend_each_worker_uses_its_own_environment(data):
    configs = grid(lr=[0.3, 1.0])
    with _one_worker_cluster(env={"XPNET_BACKEND": "no_such_backend"}) as cluster:
        with connect(cluster.scheduler_address) as client:  # a running scheduler
            with pytest.raises(SweepTaskError, match="unknown backend 'no_such_backend'"):
                sweep(configs, *data, client=client, dtype="float64", **KW)
            got = sweep(configs, *data, client=client, **F64, **KW)  # named: used as is
    _same(got, sweep(configs, *data, **F64, **KW))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_files_reach_an_encrypted_scheduler(data, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=xpnet-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    files = {f"tls_{role}_{kind}": str(f) for role in ("scheduler", "worker", "client")
             for kind, f in (("cert", cert), ("key", key))}  # fmt: skip
    security = distributed.security.Security(tls_ca_file=str(cert), require_encryption=True,
                                             **files)  # fmt: skip
    configs = grid(lr=[0.3, 1.0])
    with _one_worker_cluster(protocol="tls://", security=security) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        with connect(cluster.scheduler_address, tls_ca=cert, tls_cert=cert,
                     tls_key=key) as client:  # fmt: skip
            got = sweep(configs, *data, client=client, **F64, **KW)
    _same(got, sweep(configs, *data, **F64, **KW))


class _CountStarts(distributed.WorkerPlugin):
    """Writes one file per task start on a worker: ``<key>.<pid>.<ns>`` in a folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith("xpnet-stack"):
            Path(self.folder, f"{key}.{os.getpid()}.{time.time_ns()}").touch()


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(data, tmp_path):
    configs = grid(lr=[0.2, 0.4, 0.6, 0.8, 1.0, 1.2], seed=[0, 1])
    kw = {"iters": 6000, "batch_size": 25, "eval_interval": 1000}  # about 1 s per task
    ref = sweep(configs, *data, max_models=2, **F64, **kw)
    seen, killed = [], {}
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")
    environ = {k: os.environ.get(k) for k in names}
    with connect("local:2") as client:
        client.register_plugin(_CountStarts(str(tmp_path)), name="count-starts")
        pids = {pid: addr for addr, pid in client.run(os.getpid).items()}

        def on_result(i, record):
            seen.append(i)
            if killed:
                return
            time.sleep(0.2)  # the worker that just finished is into its next task
            newest = max(tmp_path.iterdir(), key=lambda p: int(p.name.rsplit(".", 1)[1]))
            key, pid, _ = newest.name.rsplit(".", 2)
            os.kill(int(pid), signal.SIGKILL)
            killed.update(worker=pids[int(pid)], pid=int(pid), key=key,
                          after_s=round(time.perf_counter() - start, 2))  # fmt: skip

        start = time.perf_counter()
        got = sweep(configs, *data, client=client, max_models=2, on_result=on_result,
                    **F64, **kw)  # fmt: skip
        seconds = time.perf_counter() - start
    assert {k: os.environ.get(k) for k in names} == environ  # the nanny's changes undone
    starts: dict[str, int] = {}
    for p in tmp_path.iterdir():
        key = p.name.rsplit(".", 2)[0]
        starts[key] = starts.get(key, 0) + 1
    rerun = sorted(k for k, n in starts.items() if n > 1)
    print(f"\nkilled {killed}; {len(starts)} tasks, {sum(starts.values())} starts, "
          f"rerun: {len(rerun)} ({', '.join(k.rsplit('-', 1)[1] for k in rerun)}); "
          f"sweep {seconds:.1f} s")  # fmt: skip
    assert killed and killed["key"] in rerun  # the killed worker's task ran again
    assert len(starts) == 6 and all(n <= 2 for n in starts.values())
    assert sorted(seen) == list(range(len(configs)))  # every config exactly once
    _same(got, ref)


def test_connect_rejects_bad_addresses_and_tls(tmp_path):
    with pytest.raises(ValueError, match="write local:N with N >= 1"), connect("local:0"):
        pass
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with pytest.raises(ValueError, match="is not tls://host:port"):
        with connect("tcp://127.0.0.1:8786", tls_ca=ca, tls_cert=ca):
            pass
    with pytest.raises(ValueError, match="give tls_ca and tls_cert"):
        with connect("tls://127.0.0.1:8786", tls_ca=ca):
            pass
    with pytest.raises(ValueError, match="key file .*missing.pem' does not exist"):
        with connect("tls://127.0.0.1:8786", tls_ca=ca, tls_cert=ca,
                     tls_key=tmp_path / "missing.pem"):  # fmt: skip
            pass


def test_without_dask_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'xpnet\[dask\]'"), connect("local:1"):
        pass


def test_importing_xpnet_does_not_import_dask():
    code = ("import sys, xpnet, xpnet.sweeps, xpnet.distributed; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})  # fmt: skip
    assert out.stdout.strip() == "[]"

"""Tests for xpnet.data: IDX parsing, verification, download, cache and sample fallback.

Nothing here touches the internet: downloads come from a local http.server, and every
test runs with empty mirror lists unless it passes its own.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from xpnet import data

# _download and _load: monkeypatched where the names are looked up
from xpnet.data import (
    DATASETS,
    FILES,
    ChecksumWarning,
    DataError,
    SampleFallbackWarning,
    _download,
    _load,
    load_mnist,
    read_idx,
)

N_TRAIN, N_TEST = 20, 10


def idx_gz(array: np.ndarray, magic: bytes | None = None) -> bytes:
    header = magic or bytes([0, 0, 8, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def fake_set(seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, bytes]:
    """The four .gz files of a tiny random MNIST-format data set, by file name."""
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    ]
    return {name: idx_gz(a) for name, a in zip(FILES, arrays, strict=True)}


def write_set(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (directory / name).write_bytes(blob)
    return directory


def md5(blob: bytes) -> str:
    return hashlib.md5(blob, usedforsecurity=False).hexdigest()


def trust(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes], dataset="mnist") -> None:
    """Make ``files`` the published checksums of ``dataset``."""
    monkeypatch.setitem(data.MD5S, dataset, {n: (md5(b),) for n, b in files.items()})


def listing(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real home, cache, system dirs or mirrors; no sleeping between retries."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XPNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XPNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XPNET_MNIST_MIRRORS", "")
    monkeypatch.setenv("XPNET_FASHION_MNIST_MIRRORS", "")
    monkeypatch.setattr(_load, "SYSTEM_DIRS", {})
    monkeypatch.setattr(_download, "BACKOFF_S", 0.0)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        name = self.path.rsplit("/", 1)[-1]
        srv.hits.append(name)
        body = srv.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.truncate.get(name, 0) > 0:  # promise the whole file, send half, hang up
            srv.truncate[name] -= 1
            self.wfile.write(body[: len(body) // 2])
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.truncate, srv.hits = {}, {}, []
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/mnist/"
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def dead_url():
    """A local URL whose port refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# ------------------------------------------------------------------------------- basics
def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="mnist, mnist-sample, fashion-mnist"):
        load_mnist(dataset="cifar10")
    assert DATASETS == ("mnist", "mnist-sample", "fashion-mnist")


def test_sample_shapes_dtypes_and_range(tmp_path):
    (x, t), (xt, tt) = load_mnist(dataset="mnist-sample")
    assert x.shape == (4000, 784) and xt.shape == (1000, 784)
    assert x.dtype == xt.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert t.shape == (4000,) and tt.shape == (1000,) and t.dtype == tt.dtype == np.uint8
    assert np.bincount(t).tolist() == [400] * 10 and np.bincount(tt).tolist() == [100] * 10
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no cache, no home written
    size = sum((data.SAMPLE_DIR / f).stat().st_size for f in FILES)
    assert size <= 2_000_000


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot", [True, False])
def test_output_semantics(normalize, flatten, one_hot):
    (x, t), (xt, tt) = load_mnist(normalize, flatten, one_hot, dataset="mnist-sample")
    raw = load_mnist(False, True, False, dataset="mnist-sample")
    assert x.shape == ((4000, 784) if flatten else (4000, 1, 28, 28))
    assert xt.shape[1:] == x.shape[1:]
    if normalize:
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x.reshape(4000, 784) * 255, raw[0][0].astype(np.float32))
    else:
        assert x.dtype == np.uint8 and x.max() == 255
    if one_hot:
        assert t.shape == (4000, 10) and t.dtype == np.float32
        np.testing.assert_array_equal(t.argmax(1), raw[0][1])
        assert (t.sum(1) == 1).all()
    else:
        assert t.shape == (4000,) and t.dtype == np.uint8


# ------------------------------------------------------------------------ IDX validation
@pytest.mark.parametrize(
    ("name", "blob", "msg"),
    [
        (FILES[0], idx_gz(np.zeros(N_TRAIN)), "magic number 2049, expected 2051"),
        (FILES[1], idx_gz(np.zeros((N_TRAIN, 28, 28))), "magic number 2051, expected 2049"),
        (FILES[0], idx_gz(np.zeros((3, 28, 28)), magic=b"\x12\x34\x56\x78"), "magic number"),
        (FILES[0], idx_gz(np.zeros((N_TRAIN, 27, 28))), "28x28"),
        (FILES[1], idx_gz(np.full(N_TRAIN, 10)), "label 10 outside 0..9"),
        (FILES[1], idx_gz(np.zeros(N_TRAIN + 1)), "21 labels"),
        (FILES[1], gzip.compress(gzip.decompress(idx_gz(np.zeros(N_TRAIN)))[:-3]), "truncated"),
        (FILES[0], idx_gz(np.zeros((N_TRAIN, 28, 28)))[:-9], "cannot be read"),
        (FILES[0], b"not gzip at all", "cannot be read"),
    ],
    ids=[
        "labels-as-images",
        "images-as-labels",
        "garbage-magic",
        "27x28",
        "label-range",
        "count-mismatch",
        "short-payload",
        "truncated-gzip",
        "not-gzip",
    ],
)
def test_malformed_file_gives_data_error_naming_path(tmp_path, monkeypatch, name, blob, msg):
    files = fake_set()
    files[name] = blob
    d = write_set(tmp_path / "d", files)
    with pytest.raises(DataError, match=msg) as info:
        load_mnist(data_dir=d, verify=False)
    assert str(d) in str(info.value)
    assert "\n" not in str(info.value)


def test_read_idx_roundtrip(tmp_path):
    array = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    path = tmp_path / "x.gz"
    path.write_bytes(idx_gz(array))
    got = read_idx(path)
    assert got.dtype == np.uint8 and got.flags.writeable
    np.testing.assert_array_equal(got, array)


# ----------------------------------------------------------------------------- download
def test_download_from_good_mirror_then_reuse(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    trust(monkeypatch, server.files)
    d = tmp_path / "d"
    (x, t), (xt, tt) = load_mnist(data_dir=d, mirrors=[server.url])
    assert x.shape == (N_TRAIN, 784) and xt.shape == (N_TEST, 784)
    assert sorted(os.listdir(d)) == sorted(FILES)  # no .part left behind
    assert sorted(server.hits) == sorted(FILES)
    (x2, _), _ = load_mnist(data_dir=d, mirrors=[server.url])
    np.testing.assert_array_equal(x, x2)
    assert len(server.hits) == 4  # nothing fetched again


def test_dead_mirror_falls_through_to_the_next(tmp_path, monkeypatch, server, dead_url):
    server.files.update(fake_set())
    trust(monkeypatch, server.files)
    monkeypatch.setenv("XPNET_MNIST_MIRRORS", f"{dead_url},{server.url}")
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "env-dir"))
    (x, _), _ = load_mnist()
    assert x.shape == (N_TRAIN, 784) and sorted(server.hits) == sorted(FILES)
    assert sorted(os.listdir(tmp_path / "env-dir")) == sorted(FILES)


def test_offline_gives_up_after_first_file(tmp_path, dead_url):
    with pytest.warns(SampleFallbackWarning) as record:
        (x, _), _ = load_mnist(mirrors=[dead_url, dead_url + "b/"])
    assert len(record) == 1 and x.shape == (4000, 784)
    message = str(record[0].message)
    assert FILES[0] in message and FILES[1] not in message


def test_truncated_transfer_is_retried(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    server.truncate[FILES[0]] = 1
    trust(monkeypatch, server.files)
    (x, _), _ = load_mnist(data_dir=tmp_path / "d", mirrors=[server.url])
    assert x.shape == (N_TRAIN, 784)
    assert server.hits.count(FILES[0]) == 2


def test_always_truncated_file_never_becomes_trusted(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    server.truncate[FILES[0]] = 99
    trust(monkeypatch, server.files)
    d = tmp_path / "d"
    with pytest.raises(DataError, match=f"data_dir {d} lacks the mnist files.*truncated"):
        load_mnist(data_dir=d, mirrors=[server.url])
    assert server.hits.count(FILES[0]) == data.RETRIES + 1
    assert not d.exists()  # created for the download, removed again when it failed


def test_wrong_checksum_is_rejected(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    monkeypatch.setitem(data.MD5S, "mnist", {n: ("0" * 32,) for n in FILES})
    d = tmp_path / "d"
    with pytest.raises(DataError, match="MD5"):
        load_mnist(data_dir=d, mirrors=[server.url])
    assert not d.exists()


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    trust(monkeypatch, server.files)

    class Interrupting:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(_download, "progress", lambda *a, **k: Interrupting())
    d = tmp_path / "d"
    with pytest.raises(KeyboardInterrupt):
        load_mnist(data_dir=d, mirrors=[server.url])
    assert os.listdir(d) == []


def test_corrupt_file_is_reported_and_replaced(tmp_path, monkeypatch, server):
    good = fake_set()
    server.files.update(good)
    trust(monkeypatch, good)
    d = write_set(tmp_path / "d", {**good, FILES[0]: good[FILES[0]][:-10]})
    with pytest.warns(ChecksumWarning, match=str(d / FILES[0])) as record:
        (x, _), _ = load_mnist(data_dir=d, mirrors=[server.url])
    assert len(record) == 1 and x.shape == (N_TRAIN, 784)
    assert (d / FILES[0]).read_bytes() == good[FILES[0]]
    assert server.hits == [FILES[0]]


def test_corrupt_file_is_kept_when_it_cannot_be_replaced(tmp_path, monkeypatch, dead_url):
    good = fake_set()
    trust(monkeypatch, good)
    bad = good[FILES[0]][:-10]
    d = write_set(tmp_path / "d", {**good, FILES[0]: bad})
    with pytest.warns(ChecksumWarning), pytest.raises(DataError, match=str(d / FILES[0])):
        load_mnist(data_dir=d, mirrors=[dead_url])
    with pytest.raises(DataError, match="MD5"):
        load_mnist(data_dir=d, download=False)
    assert (d / FILES[0]).read_bytes() == bad


def test_other_datasets_files_are_not_overwritten(tmp_path, monkeypatch, server):
    mnist = fake_set(seed=1)
    trust(monkeypatch, mnist, "mnist")
    trust(monkeypatch, fake_set(seed=2), "fashion-mnist")
    d = write_set(tmp_path / "d", mnist)
    with pytest.raises(DataError, match="is mnist data, not fashion-mnist"):
        load_mnist(dataset="fashion-mnist", data_dir=d, mirrors=[server.url])
    assert server.hits == []


# -------------------------------------------------------------------------------- cache
def test_cache_goes_to_cache_dir_not_to_read_only_data_dir(tmp_path, monkeypatch):
    files = fake_set()
    d = write_set(tmp_path / "sys" / "fashion-mnist", files)
    monkeypatch.setattr(_load, "SYSTEM_DIRS", {"fashion-mnist": (str(d),)})
    before = listing(d)
    d.chmod(0o555)
    try:
        (x, t), _ = load_mnist(dataset="fashion-mnist", download=False)
    finally:
        d.chmod(0o755)
    assert x.shape == (N_TRAIN, 784)
    assert listing(d) == before
    assert len(list((tmp_path / "cache").glob("fashion-mnist-*.npz"))) == 1
    assert not (tmp_path / "home").exists()


def test_cache_is_used_and_invalidated_by_a_changed_source(tmp_path, monkeypatch):
    parsed = []
    real_parse = _load.parse_files
    monkeypatch.setattr(_load, "parse_files", lambda paths: parsed.append(1) or real_parse(paths))
    d = write_set(tmp_path / "d", fake_set(seed=1))
    (_, t1), _ = load_mnist(data_dir=d, verify=False)
    (_, t1b), _ = load_mnist(data_dir=d, verify=False)
    np.testing.assert_array_equal(t1, t1b)
    assert len(parsed) == 1  # the second load was a cache hit
    new_labels = (t1 + 1) % 10
    (d / FILES[1]).write_bytes(idx_gz(new_labels))
    (_, t2), _ = load_mnist(data_dir=d, verify=False)
    np.testing.assert_array_equal(t2, new_labels)
    assert len(parsed) == 2
    (d / FILES[1]).write_bytes(idx_gz((t1 + 2) % 10))
    load_mnist(data_dir=d, verify=False)
    assert len(parsed) == 3
    # only the most recently used entries are kept
    assert len(list((tmp_path / "cache").glob("*.npz"))) == data.CACHE_KEEP


def test_corrupt_cache_is_ignored_and_rewritten(tmp_path):
    d = write_set(tmp_path / "d", fake_set())
    (x, _), _ = load_mnist(data_dir=d, verify=False)
    (cache,) = (tmp_path / "cache").glob("*.npz")
    cache.write_bytes(b"PK\x03\x04 definitely not a zip")
    (x2, _), _ = load_mnist(data_dir=d, verify=False)
    np.testing.assert_array_equal(x, x2)
    with np.load(cache, allow_pickle=False) as npz:
        assert npz["x_train"].shape == (N_TRAIN, 28, 28)


# ----------------------------------------------------------------------------- fallback
@pytest.mark.parametrize("download", [True, False])
def test_missing_mnist_falls_back_to_sample_with_one_warning(tmp_path, download):
    with pytest.warns(SampleFallbackWarning) as record:
        (x, t), (xt, tt) = load_mnist(download=download)
    assert len(record) == 1
    message = str(record[0].message)
    target = str(tmp_path / "home" / ".cache" / "xpnet" / "mnist")
    assert target in message
    lines = message.replace(target, "DIR").splitlines()
    assert len(lines) == 2 and all(len(line) < 100 for line in lines), lines
    assert x.shape == (4000, 784) and xt.shape == (1000, 784)
    assert not (tmp_path / "home").exists()  # no empty folder left behind
    assert issubclass(SampleFallbackWarning, UserWarning)


@pytest.mark.parametrize("download", [True, False])
def test_missing_fashion_mnist_is_an_error(download):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_mnist(dataset="fashion-mnist", download=download)
    assert issubclass(DataError, ValueError)


# ------------------------------------------------------------------------ Debian package
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_is_recognised(monkeypatch):
    monkeypatch.setattr(_load, "SYSTEM_DIRS", {"fashion-mnist": (str(DEBIAN_DIR),)})
    for name in FILES:
        assert _download.md5(DEBIAN_DIR / name) in data.MD5S["fashion-mnist"][name]
    (x, t), (xt, tt) = load_mnist(False, dataset="fashion-mnist", download=False)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784) and x.dtype == np.uint8
    assert np.bincount(t).tolist() == [6000] * 10


# ------------------------------------------------------- explicit folder, offline, cache
def test_explicit_data_dir_is_the_only_place_read(tmp_path):
    write_set(tmp_path / "home" / ".cache" / "xpnet" / "mnist", fake_set())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        load_mnist(data_dir=empty, download=False)
    message = str(info.value)
    assert f"data_dir {empty} lacks the mnist files" in message
    assert all(name in message for name in FILES) and "download=False" in message
    assert os.listdir(empty) == []


@pytest.fixture
def black_hole():
    """A local server that accepts connections and never answers; counts them."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.05)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    srv.close()


def test_a_mirror_that_never_answers_costs_one_timeout(tmp_path, black_hole):
    url, accepted = black_hole
    with pytest.raises(DataError, match=r"no answer within 0\.2 s"):
        load_mnist(data_dir=tmp_path / "d", mirrors=[url], timeout=0.2)
    assert len(accepted) == 1  # one wait for the whole data set, not one per file or retry
    assert data.TIMEOUT_S <= 10


def test_a_failed_download_is_remembered_for_a_while(tmp_path, monkeypatch, server, dead_url):
    with pytest.warns(SampleFallbackWarning):
        load_mnist(mirrors=[dead_url])
    server.files.update(fake_set())
    trust(monkeypatch, server.files)
    with pytest.warns(SampleFallbackWarning, match="all mirrors failed 0 min ago") as record:
        load_mnist(mirrors=[server.url])
    assert server.hits == [] and len(str(record[0].message).splitlines()) == 2
    marker = next((tmp_path / "cache").glob(".download-failed-*"))
    old = time.time() - data.RETRY_AFTER_S - 1
    os.utime(marker, (old, old))
    (x, _), _ = load_mnist(mirrors=[server.url])
    assert x.shape == (N_TRAIN, 784) and not marker.exists()


def test_xpnet_offline_turns_downloads_off(monkeypatch, server):
    server.files.update(fake_set())
    monkeypatch.setenv("XPNET_OFFLINE", "1")
    with pytest.warns(SampleFallbackWarning, match="XPNET_OFFLINE=1"):
        load_mnist(mirrors=[server.url])
    assert server.hits == []


def test_cache_is_keyed_by_content_not_by_folder(tmp_path):
    files = fake_set(seed=3)
    for name in ("a", "b", "c"):
        load_mnist(data_dir=write_set(tmp_path / name, files), verify=False)
    assert len(list((tmp_path / "cache").glob("mnist-*.npz"))) == 1
    d = data.load_data(data_dir=tmp_path / "b", verify=False)
    assert d.fingerprint == data.fingerprint([tmp_path / "a" / f for f in FILES])
    assert d.describe() == f"mnist from {tmp_path / 'b'}: 20 train / 10 test images"


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    trust(monkeypatch, server.files)
    cache, d = tmp_path / "cache", tmp_path / "d"
    cache.mkdir()
    d.mkdir()
    old = time.time() - 2 * 3600
    stale = [cache / ".mnist-x.npz.abc.tmp", d / f".{FILES[0]}.abc.part"]
    fresh = cache / ".mnist-y.npz.def.tmp"
    for p in (*stale, fresh):
        p.write_bytes(b"\0" * 100)
    for p in stale:
        os.utime(p, (old, old))
    load_mnist(data_dir=d, mirrors=[server.url])
    assert not any(p.exists() for p in stale) and fresh.exists()


def test_written_files_follow_the_umask(tmp_path, monkeypatch, server):
    server.files.update(fake_set())
    trust(monkeypatch, server.files)
    previous = os.umask(0o022)
    try:
        load_mnist(data_dir=tmp_path / "d", mirrors=[server.url])
    finally:
        os.umask(previous)
    written = [*(tmp_path / "d").iterdir(), *(tmp_path / "cache").glob("*.npz")]
    assert len(written) == 5
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {"0o644"}


def test_the_sample_says_where_it_came_from():
    d = data.load_data("mnist-sample")
    assert d.describe() == "mnist-sample from bundled sample: 4,000 train / 1,000 test images"
    assert d.x_train.dtype == np.uint8 and d.x_train.shape == (4000, 28, 28)

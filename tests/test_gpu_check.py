"""scripts/gpu_check.sh on a machine without a GPU: its plan, wheel check and step logic.

The script is sourced (nothing runs then) and its functions called one at a time, with
commands that stand in for the GPU steps.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.sh"
LIMIT_S = 600  # the script's promise: 10 minutes on a cold machine

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and timeout")  # fmt: skip


def _bash(script, tmp_path, **env):
    full = {**os.environ, "OUT": str(tmp_path / "out"), "GPU_CHECK_PYTHON": sys.executable, **env}
    return subprocess.run(["bash", "-c", script], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def _sourced(body):
    head = 'source scripts/gpu_check.sh\nout="$OUT"; mkdir -p "$out"; started=$(date +%s%N)\n'
    return head + body


def test_dry_run_plans_every_step_within_ten_minutes(tmp_path):
    r = _bash("bash scripts/gpu_check.sh --dry-run", tmp_path)
    assert r.returncode == 0, r.stderr
    planned = dict(re.findall(r"^(\w+)\s+planned \((\d+) s\)", r.stdout, flags=re.M))
    assert list(planned) == ["nvidia_smi", "environment", "kernel_cache_cold",
                             "kernel_cache_warm", "pytest_torch_cuda", "pytest_cupy",
                             "compile_torch_cuda", "parity_torch_cuda", "parity_cupy",
                             "bench", "bench_compile", "bench_convnet"]  # fmt: skip
    wheels = 15
    assert sum(int(v) for v in planned.values()) + wheels == LIMIT_S
    assert f"limits {LIMIT_S} s" in r.stdout and "dry run: no step was run" in r.stdout


def test_header_estimate_matches_the_limits_in_the_code():
    text = SCRIPT.read_text()
    table = dict(re.findall(r"^#   (\w+)\s+(\d+)\s+\d+\s+\S", text, flags=re.M))
    table.pop("total")
    assert sum(int(v) for v in table.values()) == LIMIT_S
    for name, limit in table.items():
        if name.startswith("pytest_"):
            continue  # set in the loop: 180 for CuPy, 60 otherwise
        assert re.search(rf"step {name} \S+ {limit} ", text), name
    assert "limit=180" in text and "local limit=60" in text
    assert "CUPY_NVRTC_USE_PCH=1" in text


def test_a_step_past_its_limit_or_failing_fails_the_check(tmp_path):
    r = _bash(_sourced("step slow a.txt 1 sleep 5\nstep bad a.txt 5 false\n"
                       "step good a.txt 5 true\nsummary; exit $failed"), tmp_path)  # fmt: skip
    assert r.returncode == 1
    assert re.search(r"^slow\s+TIMEOUT \(1 s\)", r.stdout, flags=re.M)
    assert re.search(r"^bad\s+FAIL \(exit 1\)", r.stdout, flags=re.M)
    assert re.search(r"^good\s+pass", r.stdout, flags=re.M)
    assert "GPU CHECK FAILED" in r.stderr


@pytest.mark.parametrize(
    ("output", "status"),
    [
        (
            "12 passed, 3 skipped\nbackend not run: cupy (backend 'cupy' is not installed)\n",
            "FAIL (deselected)",
        ),
        ("7 skipped, 1600 deselected\n", "FAIL (no test ran)"),
        ("12 passed\nbackend not run: torch:cuda (no CUDA)\n", "pass"),
    ],
    ids=["deselected", "all-skipped", "other-backend-deselected"],
)
def test_a_gpu_backend_that_ran_no_test_fails(tmp_path, output, status):
    (tmp_path / "pytest.txt").write_text(output)
    body = (
        f"step pytest_cupy p.txt 5 cat {tmp_path / 'pytest.txt'}\n"
        'check_ran cupy "$out/p.txt"\nsummary; exit $failed'
    )
    r = _bash(_sourced(body), tmp_path)
    assert re.search(rf"^pytest_cupy\s+{re.escape(status)}", r.stdout, flags=re.M), r.stdout
    assert r.returncode == (0 if status == "pass" else 1)


def _wheel(directory, name, version):
    stem = name.replace("-", "_")
    path = directory / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{stem}/__init__.py", f"VERSION = {version!r}\n")
        z.writestr(f"{stem}-{version}.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")  # fmt: skip
    return path


def test_wheel_check_unpacks_only_what_is_missing_and_names_what_cannot_be_had(tmp_path):
    wheels = tmp_path / "whl"
    wheels.mkdir()
    _wheel(wheels, "xpnet-fake-dep", "2.0")
    _wheel(wheels, "xpnet-old-dep", "0.5")
    wanted = ("pytest 8 required\nxpnet-fake-dep 1.0 required\n"
              "xpnet-optional-dep 1 optional\nxpnet-old-dep 1.0 required")  # fmt: skip
    site = tmp_path / "site"
    run = (f'source scripts/gpu_check.sh\nexport WHEELS\nmkdir -p {site}\n'
           f'"$GPU_CHECK_PYTHON" -c "$wheels_py" {site} {wheels}')  # fmt: skip
    r = _bash(run, tmp_path, GPU_CHECK_WHEELS=wanted)
    assert r.returncode == 3, r.stdout + r.stderr
    assert re.search(r"^pytest \S+: installed$", r.stdout, flags=re.M)
    unpacked = "xpnet-fake-dep: not installed; unpacked xpnet_fake_dep-2.0-py3-none-any.whl"
    assert unpacked in r.stdout
    assert "optional, skipped: xpnet-optional-dep>=1" in r.stdout
    assert (
        "MISSING: xpnet-old-dep>=1.0 (not installed) and no wheel in "
        f"{wheels}: python3 -m pip download --no-deps --only-binary=:all: -d "
        f"{wheels} 'xpnet-old-dep>=1.0'"
    ) in r.stdout
    assert (site / "xpnet_fake_dep" / "__init__.py").is_file()
    assert not (site / "xpnet_old_dep").exists()


def test_a_missing_required_wheel_stops_the_check_before_any_gpu_step(tmp_path):
    env = {"GPU_CHECK_WHEELS": "xpnet-absent-dep 1 required", "GPU_CHECK_WHEEL_DIR": str(tmp_path)}
    r = _bash("bash scripts/gpu_check.sh", tmp_path, **env)
    assert r.returncode == 1
    assert re.search(r"^wheels\s+FAIL \(exit 3\)", r.stdout, flags=re.M)
    assert "nvidia_smi" not in r.stdout and "a required package is missing" in r.stderr


@pytest.mark.slow
def test_without_a_gpu_every_gpu_backend_fails_the_check(tmp_path):
    """The whole script here: no usable GPU backend, so each one's step fails (none
    passes silently), and the CPU-only machine is not mistaken for a GPU one."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'name, driver_version, memory.total'\n")
    (fake / "nvidia-smi").chmod(0o755)
    r = _bash("bash scripts/gpu_check.sh", tmp_path, PATH=f"{fake}:{os.environ['PATH']}")
    assert r.returncode == 1
    for step in ("pytest_torch_cuda", "pytest_cupy"):
        assert re.search(rf"^{step}\s+FAIL \(not usable\)", r.stdout, flags=re.M), r.stdout
    assert re.search(r"^environment\s+FAIL \(exit 4\)", r.stdout, flags=re.M)
    assert "NOT USABLE" in (tmp_path / "out" / "environment.txt").read_text()

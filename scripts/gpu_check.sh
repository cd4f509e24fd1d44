#!/usr/bin/env bash
# The GPU checks in one run of at most 10 minutes on one cold GPU machine (empty kernel
# cache, nothing installed but Python, NumPy, CuPy and PyTorch). Run from the repository
# root on a machine with an NVIDIA GPU:
#
#     bash scripts/gpu_check.sh            # outputs in ./gpu-results, or in $OUT when set
#     bash scripts/gpu_check.sh --dry-run  # the wheel check and the plan; runs no step
#
# Steps and their limits (seconds); the sum of the limits is the worst case, 600 s:
#
#   step                limit  expected  what
#   wheels                 15         2  unpack the missing wheels of ./.whl (below)
#   nvidia_smi              5         1  the GPU, its driver and memory
#   environment            35        15  versions; each GPU backend opened and probed
#   kernel_cache_cold      40        25  a 60-step CuPy train(), empty kernel cache
#   kernel_cache_warm      10         8  the same run again on the cache it filled
#   pytest_torch_cuda      60        40  pytest -m "gpu and not slow" --backend torch:cuda
#   pytest_cupy           180       100  pytest -m "gpu and not slow" --backend cupy
#   compile_torch_cuda     80        50  pytest -m "slow and gpu" tests/test_step.py (torch:cuda)
#   parity_torch_cuda      30        15  scripts/parity.py on torch CUDA
#   parity_cupy            30        20  scripts/parity.py on CuPy (kernels mostly cached)
#   bench                  50        35  scripts/bench.py --quick --gpu-only --synthetic
#   bench_compile          35        25  the same, --section compile (compiled steps)
#   bench_convnet          30        20  SimpleConvNet/DeepConvNet steps/s, torch CUDA, CuPy
#   total                 600       356
#
# How the limits were set. CuPy compiles each new kernel (one per operation, dtype
# combination and number of dimensions) with NVRTC on first use, 0.2-0.3 s each; with
# CUPY_NVRTC_USE_PCH=1 (set here) NVRTC reuses its parsed headers, assumed to halve that.
# CUB's block reductions would take 3-4 s each; xpnet turns them off when it opens CuPy.
# The GPU tests of a backend are the tests torch:cpu runs. Counted with a TorchFunctionMode
# on torch:cpu, the first 453 tests of that run call 487 distinct (operation, dtypes,
# dimensions) combinations, so CuPy compiles about 550 kernels for all of them:
# 550 x 0.25 s / 2 = 70 s, plus about 25 s of collection and running, 100 s expected; the
# limit, 180 s, also holds if the header cache saves nothing (550 x 0.25 s + 25 s = 163 s).
# torch CUDA compiles nothing: its tests take about 40 s with start-up. The kernel-cache
# steps time a train() of about 60 kernels cold (15 s of compiles plus 10 s of imports and
# probe) and warm; the later CuPy steps reuse that cache. The compiled-step steps compile
# with torch.compile (Inductor, Triton, CUDA graphs): three parity runs and a stack of 16,
# about 10 s of compilation each, assumed. Every figure is an estimate made
# without a GPU; the summary table records what each step took.
#
# A step that fails or runs out of time is reported at once and in the summary table at
# the end (step, status, seconds), and the script exits 1. Every GPU backend (torch CUDA
# and CuPy) must be usable and must run its tests: a backend the probe rejects, or whose
# tests pytest deselected ("backend not run: ..."), fails the check.
#
# Wheels. Carry each package the image may lack as a wheel in ./.whl (git-ignored),
# fetched on a machine with PyPI access:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl \
#     'array-api-compat>=1.16' 'array-api-strict>=2.3' 'threadpoolctl>=3' 'pytest>=8' \
#     pluggy iniconfig packaging pygments 'hypothesis>=6.100' sortedcontainers mpmath \
#     exceptiongroup tomli
# (exceptiongroup and tomli only for Python < 3.11). The wheels step checks each package
# against the Python here and unpacks only those missing or too old, into a temporary
# directory put on PYTHONPATH (all are pure Python), never into the system's Python;
# a required package with neither an installed copy nor a wheel fails the check.
# threadpoolctl is optional (xpnet runs without it). At most 19 files are written:
# environment.txt, wheels.txt, kernel_cache.txt, pytest_torch_cuda.txt, pytest_cupy.txt,
# parity_cupy.{txt,json}, parity_torch_cuda.{txt,json}, bench.{txt,json},
# compile_torch_cuda.txt, bench_compile.{txt,json}, bench_convnet.txt.
set -euo pipefail

PY=${GPU_CHECK_PYTHON:-python3}
WHEEL_DIR=${GPU_CHECK_WHEEL_DIR:-.whl}
GPU_IDS=(torch:cuda cupy)
# name, minimum version, when it is needed: "required", "optional" or "py<3.11"
WHEELS=${GPU_CHECK_WHEELS:-"array-api-compat 1.16 required
array-api-strict 2.3 required
threadpoolctl 3 optional
pytest 8 required
pluggy 1.5 required
iniconfig 2 required
packaging 24 required
pygments 2.15 required
hypothesis 6.100 required
sortedcontainers 2.1 required
mpmath 1.3 required
exceptiongroup 1 py<3.11
tomli 2 py<3.11"}

names=() statuses=() seconds=()
failed=0
dry_run=0
limits_total=0

record() {  # record NAME STATUS MILLISECONDS
    names+=("$1")
    statuses+=("$2")
    seconds+=("$(printf '%d.%d' $(($3 / 1000)) $(($3 % 1000 / 100)))")
}

fail_last() {  # fail_last STATUS MESSAGE: the last recorded step failed after all
    statuses[-1]=$1
    echo "!!! $2" >&2
    failed=1
}

step() {  # step NAME FILE LIMIT_S COMMAND...: output appended to $out/FILE and shown
    local name=$1 file=$2 limit=$3 rc=0 t0 shown
    shift 3
    shown="$*"
    shown=${shown//$'\n'/ }
    limits_total=$((limits_total + limit))
    echo "=== $name (limit ${limit} s): ${shown:0:100}" | tee -a "$out/$file"
    if [ "$dry_run" -eq 1 ]; then
        record "$name" "planned (${limit} s)" 0
        return 0
    fi
    t0=$(date +%s%N)
    timeout -k 2 "$limit" "$@" 2>&1 | tee -a "$out/$file" || rc=$?
    local ms=$((($(date +%s%N) - t0) / 1000000))
    if [ "$rc" -eq 0 ]; then
        record "$name" pass "$ms"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        record "$name" "TIMEOUT (${limit} s)" "$ms"
        echo "!!! $name ran out of time (${limit} s); see $out/$file" >&2
        failed=1
    else
        record "$name" "FAIL (exit $rc)" "$ms"
        echo "!!! $name FAILED with exit $rc; see $out/$file" >&2
        failed=1
    fi
    return 0
}

check_ran() {  # check_ran BACKEND_ID FILE: fail the last step if that backend ran no test
    [ "$dry_run" -eq 1 ] && return 0
    if grep -q "^backend not run: $1 " "$2"; then
        fail_last "FAIL (deselected)" "$1: pytest deselected its tests (not usable); see $2"
    elif [ "${statuses[-1]}" = pass ] && ! grep -Eq '[0-9]+ passed' "$2"; then
        fail_last "FAIL (no test ran)" "$1: no GPU test ran (all skipped?); see $2"
    fi
    return 0
}

summary() {
    local total=$((($(date +%s%N) - started) / 1000000))
    echo
    echo "=== summary (outputs in $out)"
    printf '%-18s  %-22s  %8s\n' step status seconds
    printf '%-18s  %-22s  %8s\n' ------------------ ---------------------- --------
    for i in "${!names[@]}"; do
        printf '%-18s  %-22s  %8s\n' "${names[$i]}" "${statuses[$i]}" "${seconds[$i]}"
    done
    printf '%-18s  %-22s  %8s\n' total "limits ${limits_total} s" \
        "$((total / 1000)).$((total % 1000 / 100))"
    if [ "$dry_run" -eq 1 ]; then
        echo "dry run: no step was run"
    elif [ "$failed" -ne 0 ]; then
        echo "GPU CHECK FAILED: see the steps marked FAIL or TIMEOUT above" >&2
    else
        echo "GPU check passed"
    fi
}

read -r -d '' wheels_py <<'PY' || true
"""Unpack the wheels of the packages this Python lacks: wheels.py SITE WHEEL_DIR [--check]."""
import glob
import os
import re
import sys
import zipfile
from importlib import metadata


def version_tuple(v):
    return tuple(int(p) for p in re.findall(r"\d+", v)[:3])


site, wheel_dir = sys.argv[1], sys.argv[2]
check_only = "--check" in sys.argv[3:]
missing = 0
for line in os.environ["WHEELS"].strip().splitlines():
    name, minimum, when = line.split()
    if when == "py<3.11" and sys.version_info >= (3, 11):
        continue
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have is not None and version_tuple(have) >= version_tuple(minimum):
        print(f"{name} {have}: installed")
        continue
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = sorted(w for w in glob.glob(os.path.join(wheel_dir, "*.whl"))
                   if os.path.basename(w).lower().startswith(stem + "-"))
    found = [w for w in found if version_tuple(os.path.basename(w).split("-")[1])
             >= version_tuple(minimum)]
    why = "not installed" if have is None else f"{have} is older than {minimum}"
    if not found:
        level = "MISSING" if when != "optional" else "optional, skipped"
        print(f"{level}: {name}>={minimum} ({why}) and no wheel in {wheel_dir}: "
              f"python3 -m pip download --no-deps --only-binary=:all: -d {wheel_dir} "
              f"'{name}>={minimum}'")
        missing += when != "optional"
        continue
    if not check_only:
        with zipfile.ZipFile(found[-1]) as z:
            z.extractall(site)
    verb = "would unpack" if check_only else "unpacked"
    print(f"{name}: {why}; {verb} {os.path.basename(found[-1])}")
sys.exit(3 if missing else 0)
PY

read -r -d '' environment_py <<'PY' || true
import sys

try:
    import array_api_compat
except ImportError:
    print("MISSING: array-api-compat is not installed, and xpnet cannot run without it.\n"
          "Carry its wheel in ./.whl (see the top of scripts/gpu_check.sh).")
    sys.exit(3)
import numpy

import xpnet

print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, "
      f"array-api-compat {array_api_compat.__version__}, xpnet {xpnet.__version__}")
usable = []
for name in ("torch", "cupy"):
    try:
        b = xpnet.get_backend(name, "cuda")
    except xpnet.BackendError as exc:
        print(f"{name}: NOT USABLE: {exc}")
        continue
    usable.append(name)
    version = getattr(sys.modules.get(name), "__version__", "?")
    print(f"{name} {version}: usable on {b.device_name}")
print("usable GPU backends:", " ".join(usable) or "none")
sys.exit(0 if len(usable) == 2 else 4)
PY

read -r -d '' cache_py <<'PY' || true
import time

t0 = time.perf_counter()
import numpy as np

import xpnet

b = xpnet.get_backend("cupy", "cuda", "float32")
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(6000, 784), dtype=np.uint8)
t = rng.integers(0, 10, size=6000)
net = xpnet.TwoLayerNet(784, 50, 10, backend=b, seed=0)
h = xpnet.train(net, x, t, x[:1000], t[:1000], iters=60, batch_size=100, eval_interval=30)
print(f"process {time.perf_counter() - t0:.2f} s: warm-up {h.warmup_seconds:.2f} s, "
      f"loop {h.loop_seconds:.2f} s (60 steps, 3 evaluations), final loss {h.loss[-1]:.4f}")
PY

main() {
    if [ "${1:-}" = "--dry-run" ]; then
        dry_run=1
    elif [ -n "${1:-}" ]; then
        echo "usage: bash scripts/gpu_check.sh [--dry-run]" >&2
        return 2
    fi
    out="${OUT:-gpu-results}"
    mkdir -p "$out"
    local f
    for f in environment.txt wheels.txt kernel_cache.txt pytest_torch_cuda.txt pytest_cupy.txt \
        parity_cupy.txt parity_cupy.json parity_torch_cuda.txt parity_torch_cuda.json \
        bench.txt bench.json compile_torch_cuda.txt bench_compile.txt bench_compile.json \
        bench_convnet.txt; do
        rm -f "$out/$f"
    done
    started=$(date +%s%N)
    work=$(mktemp -d /tmp/xpnet-gpu-check.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/site" "$work/kernel-cache"

    # The checkout first, then the unpacked wheels; JAX (if installed) stays on the CPU so
    # it reserves no GPU memory; no data download is tried; NVRTC reuses its header cache.
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}:$work/site" PYTHONUNBUFFERED=1 \
        JAX_PLATFORMS=cpu XPNET_MNIST_MIRRORS= CUPY_NVRTC_USE_PCH=1 WHEELS

    # The wheel check runs also in a dry run: it is what a dry run can prove here.
    local saved=$dry_run
    dry_run=0
    local check=()
    [ "$saved" -eq 1 ] && check=(--check)
    step wheels wheels.txt 15 "$PY" -c "$wheels_py" "$work/site" "$WHEEL_DIR" "${check[@]}"
    dry_run=$saved
    if [ "${statuses[-1]}" != pass ]; then
        echo "!!! a required package is missing (see $out/wheels.txt); no other step is run" >&2
        summary
        return 1
    fi

    step nvidia_smi environment.txt 5 nvidia-smi \
        --query-gpu=name,driver_version,memory.total --format=csv
    step environment environment.txt 35 "$PY" -c "$environment_py"
    local usable=""
    if [ "$dry_run" -eq 0 ]; then
        usable=$(sed -n 's/^usable GPU backends: //p' "$out/environment.txt")
        [ "$usable" = none ] && usable=""
    fi

    # CuPy's kernel cache, cold and then warm; the later CuPy steps reuse it.
    if [[ " $usable " == *" cupy "* ]] || [ "$dry_run" -eq 1 ]; then
        export CUPY_CACHE_DIR="$work/kernel-cache"
        step kernel_cache_cold kernel_cache.txt 40 "$PY" -c "$cache_py"
        step kernel_cache_warm kernel_cache.txt 10 "$PY" -c "$cache_py"
    fi

    local id name
    for id in "${GPU_IDS[@]}"; do
        name=${id%%:*}
        if [[ " $usable " != *" $name "* ]] && [ "$dry_run" -eq 0 ]; then
            record "pytest_${id//:/_}" "FAIL (not usable)" 0
            failed=1
            continue
        fi
        local limit=60
        [ "$name" = cupy ] && limit=180
        step "pytest_${id//:/_}" "pytest_${id//:/_}.txt" "$limit" "$PY" -m pytest -q \
            -m "gpu and not slow" -p no:cacheprovider --backend "$id"
        check_ran "$id" "$out/pytest_${id//:/_}.txt"
    done
    if [[ " $usable " == *" torch "* ]] || [ "$dry_run" -eq 1 ]; then
        step compile_torch_cuda compile_torch_cuda.txt 80 "$PY" -m pytest -q -m "slow and gpu" \
            -p no:cacheprovider tests/test_step.py --backend torch:cuda
        check_ran torch:cuda "$out/compile_torch_cuda.txt"
        step parity_torch_cuda parity_torch_cuda.txt 30 "$PY" scripts/parity.py \
            --backend torch --device cuda --out "$out/parity_torch_cuda.json"
    fi
    if [[ " $usable " == *" cupy "* ]] || [ "$dry_run" -eq 1 ]; then
        step parity_cupy parity_cupy.txt 30 "$PY" scripts/parity.py --backend cupy \
            --device cuda --out "$out/parity_cupy.json"
    fi
    if [ -n "$usable" ] || [ "$dry_run" -eq 1 ]; then
        step bench bench.txt 50 "$PY" scripts/bench.py --quick --gpu-only --synthetic \
            --out "$out/bench.json"
        step bench_compile bench_compile.txt 35 "$PY" scripts/bench.py --quick --gpu-only \
            --synthetic --section compile --out "$out/bench_compile.json"
        step bench_convnet bench_convnet.txt 30 "$PY" -m benchmarks.convnet --gpu-rows \
            --backends torch:cuda,cupy --seconds 1
    fi

    summary
    return "$failed"
}

# Sourced (the tests call the functions one by one), nothing runs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi

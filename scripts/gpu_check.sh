#!/usr/bin/env bash
# The GPU checks in one run of at most 6 minutes on one GPU, CuPy's first-use kernel
# compiles included: the environment, `pytest -m gpu`, scripts/parity.py for CuPy and for
# torch CUDA, and the GPU rows of `scripts/bench.py --quick` (no CPU row is timed).
# Run from the repository root on a machine with an NVIDIA GPU:
#
#     bash scripts/gpu_check.sh        # outputs in ./gpu-results, or in $OUT when set
#
# Every step has a time limit. A step that fails or runs out of time is reported at once
# and in the summary table at the end (step, status, seconds), and the script exits 1.
# A GPU backend that is not usable here (CuPy not installed, torch without CUDA) skips its
# parity step, which the table says. At most 8 files are written: environment.txt,
# pytest_gpu.txt, parity_cupy.{txt,json}, parity_torch_cuda.{txt,json}, bench.{txt,json}.
#
# array-api-compat (which xpnet needs) and array-api-strict (for the tests) may be missing
# from a GPU image. Carry them as wheels in ./.whl (git-ignored), fetched on a machine with
# PyPI access:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl \
#     array-api-compat array-api-strict
# They are installed into a temporary directory, never into the system's Python.
set -euo pipefail

out="${OUT:-gpu-results}"
mkdir -p "$out"
files=(environment.txt pytest_gpu.txt parity_cupy.txt parity_cupy.json parity_torch_cuda.txt
    parity_torch_cuda.json bench.txt bench.json)
for f in "${files[@]}"; do rm -f "$out/$f"; done

# The checkout first; JAX (if installed) stays on the CPU so it reserves no GPU memory;
# no data download is tried.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu \
    XPNET_MNIST_MIRRORS=

names=() statuses=() seconds=()
failed=0
started=$(date +%s%N)

record() {  # record NAME STATUS MILLISECONDS
    names+=("$1")
    statuses+=("$2")
    seconds+=("$(printf '%d.%d' $(($3 / 1000)) $(($3 % 1000 / 100)))")
}

step() {  # step NAME FILE LIMIT_S COMMAND...: output appended to $out/FILE and shown
    local name=$1 file=$2 limit=$3 rc=0 t0 shown
    shift 3
    shown="$*"
    shown=${shown//$'\n'/ }
    echo "=== $name (limit ${limit} s): ${shown:0:100}" | tee -a "$out/$file"
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

summary() {
    local total=$((($(date +%s%N) - started) / 1000000))
    echo
    echo "=== summary (outputs in $out)"
    printf '%-18s  %-22s  %8s\n' step status seconds
    printf '%-18s  %-22s  %8s\n' ------------------ ---------------------- --------
    for i in "${!names[@]}"; do
        printf '%-18s  %-22s  %8s\n' "${names[$i]}" "${statuses[$i]}" "${seconds[$i]}"
    done
    printf '%-18s  %-22s  %8s\n' total "" "$((total / 1000)).$((total % 1000 / 100))"
    if [ "$failed" -ne 0 ]; then
        echo "GPU CHECK FAILED: see the steps marked FAIL or TIMEOUT above" >&2
    else
        echo "GPU check passed"
    fi
}

if compgen -G ".whl/*.whl" >/dev/null; then
    site=$(mktemp -d /tmp/xpnet-site.XXXXXX)
    trap 'rm -rf "$site"' EXIT
    export PYTHONPATH="$PYTHONPATH:$site" PIP_ROOT_USER_ACTION=ignore
    step wheels environment.txt 15 python3 -m pip install -q --no-index --no-deps \
        --no-compile --no-cache-dir --target "$site" .whl/*.whl
else
    echo "=== wheels: no ./.whl/*.whl carried; using the packages installed here" |
        tee -a "$out/environment.txt"
fi

read -r -d '' environment_py <<'PY' || true
import sys

try:
    import array_api_compat
except ImportError:
    print("MISSING: array-api-compat is not installed, and xpnet cannot run without it.\n"
          "Install it (python3 -m pip install array-api-compat) or carry its wheel in ./.whl\n"
          "(see the top of scripts/gpu_check.sh).")
    sys.exit(3)
import numpy

import xpnet

print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, "
      f"array-api-compat {array_api_compat.__version__}, xpnet {xpnet.__version__}")
try:
    import array_api_strict

    print(f"array-api-strict {array_api_strict.__version__}")
except ImportError:
    print("array-api-strict not installed: the tests' strict backends will skip")
usable = []
for name in ("cupy", "torch"):
    try:
        b = xpnet.get_backend(name, "cuda")
    except xpnet.BackendError as exc:
        print(f"{name}: not usable: {exc}")
        continue
    usable.append(name)
    version = getattr(sys.modules.get(name), "__version__", "?")
    print(f"{name} {version}: usable on {b.device_name}")
print("usable GPU backends:", " ".join(usable) or "none")
sys.exit(0 if usable else 4)
PY

step nvidia_smi environment.txt 15 nvidia-smi \
    --query-gpu=name,driver_version,memory.total --format=csv
step environment environment.txt 35 python3 -c "$environment_py"
gpu=$(sed -n 's/^usable GPU backends: //p' "$out/environment.txt")
if [ "${statuses[-1]}" != pass ]; then
    echo "!!! the environment is not ready (array-api-compat or a GPU backend missing:" \
        "see $out/environment.txt); the other steps are not run" >&2
    summary
    exit 1
fi

step pytest_gpu pytest_gpu.txt 110 python3 -m pytest -q -m gpu -p no:cacheprovider
# Every GPU test skipped (a backend's probe failed) would pass silently: say so and fail.
if [ "${statuses[-1]}" = pass ] && ! grep -Eq '[0-9]+ passed' "$out/pytest_gpu.txt"; then
    statuses[-1]="FAIL (no test ran)"
    echo "!!! pytest_gpu ran no GPU test (all skipped?); see $out/pytest_gpu.txt" >&2
    failed=1
fi
if [[ " $gpu " == *" cupy "* ]]; then
    step parity_cupy parity_cupy.txt 60 python3 scripts/parity.py --backend cupy \
        --device cuda --out "$out/parity_cupy.json"
else
    record parity_cupy "skip: cupy not usable" 0
fi
if [[ " $gpu " == *" torch "* ]]; then
    step parity_torch_cuda parity_torch_cuda.txt 35 python3 scripts/parity.py --backend torch \
        --device cuda --out "$out/parity_torch_cuda.json"
else
    record parity_torch_cuda "skip: torch not usable" 0
fi
step bench bench.txt 70 python3 scripts/bench.py --quick --gpu-only --synthetic \
    --out "$out/bench.json"

summary
exit "$failed"

#!/usr/bin/env bash
# The GPU checks in one run (issues 4 and 5): `pytest -m gpu`, scripts/parity.py for cupy
# and for torch CUDA, and the benchmark's GPU rows. Run from the repository root on a
# machine with an NVIDIA GPU; every output lands in $OUT (default ./gpu-results) and a
# summary of exit codes is printed at the end. A failing step does not stop the others.
#
# Packages the GPU image may lack (array-api-compat, array-api-strict) can travel as
# wheels in ./.whl (git-ignored), fetched on a machine with PyPI access:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp -d .whl array-api-compat array-api-strict
set -uo pipefail
out="${OUT:-gpu-results}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/xpnet-site .whl/*.whl && export PYTHONPATH="/tmp/xpnet-site"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XPNET_MNIST_MIRRORS=

declare -A status
run() {  # run NAME COMMAND...: output to $out/NAME.txt and the terminal
    local name=$1
    shift
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$out/$name.txt"
    status[$name]=${PIPESTATUS[0]}
}

run environment bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
    python3 -c "import numpy, array_api_compat; print(\"numpy\", numpy.__version__,
    \"array_api_compat\", array_api_compat.__version__)";
    python3 -c "import cupy; print(\"cupy\", cupy.__version__)";
    python3 -c "import torch; print(\"torch\", torch.__version__, torch.cuda.is_available())"'
run pytest_gpu python3 -m pytest -q -m gpu -p no:cacheprovider
run parity_cupy python3 scripts/parity.py --backend cupy --out "$out/parity_cupy.json"
run parity_torch_cuda python3 scripts/parity.py --backend torch --device cuda \
    --out "$out/parity_torch_cuda.json"
run bench python3 scripts/bench.py --synthetic --out "$out/bench.json"

echo "=== summary (exit codes; outputs in $out)"
worst=0
for name in environment pytest_gpu parity_cupy parity_torch_cuda bench; do
    echo "$name: ${status[$name]}"
    [ "${status[$name]}" -ne 0 ] && worst=1
done
exit $worst

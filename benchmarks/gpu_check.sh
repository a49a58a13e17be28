#!/usr/bin/env bash
# xpnet's GPU proof in one go, on a GPU machine without network (6-8 minutes expected; the
# 2026-11-30 version took 4 on an H200): the suite on the GPU backends, the fused CuPy kernels
# against generic and torch (values, then times), CuPy's capture routes (nvmath, cuTENSOR),
# the CLI's parity and checkpoints across devices, the end-to-end comparison at two batch
# sizes (xpnet[torch-cuda] graphed and op by op, JAX, CuPy, the PyTorch loop eager and under
# torch.compile), mixed precision, JAX's compiled epochs and the step runner, most wanted
# first; what is done is packed after each stage, so a run cut short still reports. On the CPU
# machine first (../shared/GPU.md):
#   printf '/.whl/\n/.gpu/\n' >> .git/info/exclude
#   mkdir -p .whl .gpu && cp ../shared/wheels/*.whl .whl/
#   xpnet train --backend numpy --out .gpu/cpu-run --quiet        # a checkpoint made on a CPU
#   git archive BASE src | tar -x -C .gpu/before                   # optional: code to compare
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux_2_28_x86_64 -d .whl/nvmath nvmath-python 'cuda-bindings>=13,<14' \
#     cuda-core cuda-pathfinder                                    # CuPy's capture route (issue 23)
# then, with .whl and .gpu carried along:  bash benchmarks/gpu_check.sh
# Everything lands under $OUT (at most 8 files come back: logs and one results.tar.gz).
set -u
OUT=${OUT:-/tmp/xpnet-gpu-out}
W=/tmp/xpnet-gpu-work
mkdir -p "$OUT" "$W/logs"
T0=$(date +%s)
# each stage is stamped, and what is done so far packed, so a run cut short still reports
stamp() {
  tar -czf "$OUT/results.tar.gz" --exclude='*.png' -C $W . 2>/dev/null
  echo "== $1 at +$(($(date +%s) - T0)) s"
}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 SCIPY_ARRAY_API=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false # JAX must not take 75 % of the GPU per process
python3 -m pip install -q --no-deps --no-index --no-build-isolation -e . || exit 1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import xpnet, cupy, torch; print(xpnet.available_backends(), 'cupy', cupy.__version__, 'torch', torch.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"
set -o pipefail

# most wanted first (the kernels no GPU has run yet); at most 8 files in $OUT, the rest in
# results.tar.gz
stamp pytest # the suite on the GPU backends (CI proves the CPU ones); pytest-benchmark
# warns under xdist, which the suite's filterwarnings=error would turn into a crash
XPNET_BACKENDS=cupy,cupy-f64,torch-cuda,jax,jax-f64 timeout 240 python3 -m pytest -q -n 8 --maxfail=60 \
  -p no:cacheprovider -p no:benchmark -rfE --durations=10 tests 2>&1 |
  tee "$OUT/pytest-gpu.log" | tail -n 40

stamp kernels # issues 22/23: the fused CuPy kernels against generic and torch; launches per step
timeout 60 python3 benchmarks/layer_kernels.py 2>&1 | tee "$OUT/layer-kernels.log"

stamp cupy-capture # issue 23's CuPy route: the MNIST step captured with its products through
# nvmath-python (cuBLASLt) or cuTENSOR, against CuPy's eager step; nvmath in its own site
{
  if ls .whl/nvmath/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-nvmath \
      .whl/nvmath/*.whl
  fi
  for batch in 128 1024; do
    PYTHONPATH=/tmp/site:/tmp/site-nvmath timeout 60 python3 benchmarks/cupy_capture.py \
      --batch $batch
  done
} 2>&1 | tee "$OUT/cupy-capture.log"

stamp cli # the default job, same seed, on three backends; checkpoints across devices
{
  timeout 60 python3 -m xpnet train --backend numpy --out $W/run-numpy --quiet
  timeout 60 python3 -m xpnet train --backend cupy --out $W/run-cupy --quiet
  timeout 60 python3 -m xpnet train --backend torch --device cuda --out $W/run-torch-cuda --quiet
  timeout 30 python3 -m xpnet evaluate $W/run-cupy --backend numpy
  timeout 30 python3 -m xpnet evaluate $W/run-cupy --backend torch --device cuda
  if [ -d .gpu/cpu-run ]; then
    timeout 30 python3 -m xpnet evaluate .gpu/cpu-run --backend cupy
    timeout 30 python3 -m xpnet evaluate .gpu/cpu-run --backend torch --device cuda
  fi
} 2>&1 | tee $W/logs/cli.log

stamp e2e # xpnet.fit against the PyTorch CUDA loop; the older code too where given
{
  for batch in 128 1024; do
    timeout 60 python3 benchmarks/fit_e2e.py --device cuda --samples 60000 --rounds 7 \
      --batch $batch --out $W/e2e
    if [ -d .gpu/before/src ]; then
      PYTHONPATH=/tmp/site:$PWD/.gpu/before/src timeout 60 python3 benchmarks/fit_e2e.py \
        --device cuda --samples 60000 --rounds 7 --batch $batch --out $W/e2e-before
    fi
  done
} 2>&1 | tee "$OUT/e2e.log"

stamp precision # issue 24: the large step in bf16-mixed/16-mixed against float32, TF32,
# torch.autocast and the floors; then the same training in each policy (test accuracy and
# seconds in each run's metrics.json; --data mnist where its files are cached on the machine)
{
  timeout 150 python3 benchmarks/precision.py --device cuda --out $W/precision/large-step
  for precision in 32 bf16-mixed 16-mixed; do
    timeout 90 python3 -m xpnet train --backend torch --device cuda --precision $precision \
      --hidden 256,256 --batch-size 128 --epochs 20 --out $W/precision/digits-$precision --quiet
  done
} 2>&1 | tee "$OUT/precision.log"

stamp compiled # JAX's compiled epochs on the GPU against its op-by-op path (and NumPy's)
timeout 90 python3 benchmarks/fit_jax.py --epochs 4 --out $W/fit-jax 2>&1 | tee $W/logs/fit-jax.log

stamp bench # the step runner: against the classic step, PyTorch and the hardware floors
timeout 130 python3 benchmarks/run.py --backends cupy,torch --out $W/bench 2>&1 |
  tee $W/logs/bench.log | tail -n 60

stamp done
ls -la "$OUT"

#!/usr/bin/env bash
# Every GPU check of issue 25 in one run (see benchmarks/studies/gpu_study.py):
#   bash scripts/gpu_check.sh OUT [extra gpu_study options, e.g. --device cpu --quick]
# Installs the wheels carried in .whl/ (POT, geomloss, flash-sinkhorn; made with
# `python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 ...`, see the
# README's GPU section) into /tmp/site when present, then writes OUT/gpu/*.
set -u
OUT="${1:?usage: bash scripts/gpu_check.sh OUT [gpu_study options]}"
shift
cd "$(dirname "$0")/.."
mkdir -p "$OUT/gpu"
PY=python3
if ls .whl/*.whl >/dev/null 2>&1; then
  for whl in .whl/*.whl; do  # one at a time: a wheel for another Python must not block the rest
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
      "$whl" > /tmp/gpu_check_install.log 2>&1 \
      && echo "installed $(basename "$whl")" \
      || { echo "could not install $(basename "$whl"):"; tail -n 3 /tmp/gpu_check_install.log; }
  done
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
$PY -c "import torch, ot; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'POT', ot.__version__)"
exec $PY -m benchmarks.studies.gpu_study --out "$OUT" "$@"

#!/usr/bin/env bash
# GPU check for a host with jax but without TensorFlow (the lent GPU machines):
# runs the task networks with KERAS_BACKEND=jax on synthetic in-memory batches and
# prints images/s for float32 and mixed_bfloat16 (bench/train_throughput.py).
#
#   bash bench/gpu_check.sh [extra train_throughput.py arguments]
#
# Needs keras (and its small dependencies) importable next to jax; the repository
# root on PYTHONPATH gives taskonomy_tf (its models use keras.ops only).
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY'
import jax
print({"jax": jax.__version__, "devices": [str(d) for d in jax.devices()]})
PY
python bench/train_throughput.py --encoders resnet50,small --sizes 256 \
  --precisions float32,mixed_bfloat16 --batch-size 32 --steps 30 --steps-per-execution 10 "$@"

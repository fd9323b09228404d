#!/usr/bin/env bash
# GPU check for a host with jax and torch but without TensorFlow (the lent GPU machines):
# the project's task network (ResNet-50 + the paper's decoder, 256 px, batch 32) under
# KERAS_BACKEND=jax (bench/train_throughput.py) beside a PyTorch model of the same shape
# (bench/torch_baseline.py), on the same card in the same run; prints images/s for float32
# and bfloat16 and the ratio (goal: the project's >= 1.5x the baseline's).
#
#   bash bench/gpu_check.sh > gpu.json
#
# Needs keras (and its small dependencies) importable next to jax; the repository
# root on PYTHONPATH gives taskonomy_tf (its models use keras.ops only).
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="$(mktemp -d)"
python - <<'PY'
import jax
print({"jax": jax.__version__, "devices": [str(d) for d in jax.devices()]})
PY
python bench/train_throughput.py --encoders resnet50 --sizes 256 \
  --precisions float32,mixed_bfloat16 --batch-size 32 --steps 30 --steps-per-execution 10 \
  | tail -n +1 > "$out/keras.txt"
python bench/torch_baseline.py --size 256 --batch-size 32 --steps 30 \
  --precisions float32,bfloat16 > "$out/torch.json"
python - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
text = (out / "keras.txt").read_text()
keras = json.loads(text[text.index('{\n'):])  # the summary after the per-row lines
torch = json.loads((out / "torch.json").read_text())
ours = {r["precision"]: r["images_per_s"] for r in keras["rows"]}
base = torch["images_per_s"]
print(json.dumps({
    "benchmark": "gpu_check", "device": torch["device"], "size": 256, "batch_size": 32,
    "taskonomy_tf_jax_images_per_s": ours, "torch_images_per_s": base,
    "ratio_float32": round(ours["float32"] / base["float32"], 2),
    "ratio_bfloat16": round(ours["mixed_bfloat16"] / base["bfloat16"], 2),
    "goal": "ratio >= 1.5"}, indent=1))
PY

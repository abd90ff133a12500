#!/usr/bin/env bash
# One prepared command for a lent GPU machine (device tool): train a preset within one call,
# export, and leave everything under $OUT. Nothing to install there (torch 2.11, onnx,
# onnxruntime are present). See training/README.md, "Training on a lent GPU".
#
#   bash training/gpu_run.sh CONFIG MODEL_NAME MINUTES [key=value ...]
#
# Expects both archive halves of the preset's dataset under data/device/ (carried one per call).
set -euo pipefail
config=$1; model=$2; minutes=$3; shift 3
export PYTHONUNBUFFERED=1
out=${OUT:-out}
mkdir -p "$out"
python=${PYTHON:-$(command -v python3)}  # PYTHON=.venv/bin/python for a CPU rehearsal
name=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" "$config")
dataset=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['dataset'])" "$config")
data="data/device/${dataset}-train-*.tar.gz"
ls $data >/dev/null  # fail early if the archives were not carried
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

"$python" -m training.train --config "$config" data="$data" device=cuda time_budget_minutes="$minutes" "$@" 2>&1 | tee "$out/train.log"
"$python" -m training.export --checkpoint "runs/$name/checkpoint.pt" --out "models/$model" --name "$model" --data "$data" 2>&1 | tee -a "$out/train.log"
tar -czf "$out/result.tar.gz" "models/$model" "runs/$name/checkpoint.pt" "runs/$name/log.jsonl"
ls -la "$out"

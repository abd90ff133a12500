#!/usr/bin/env bash
# One prepared command for a lent GPU machine (device tool): within one call, train a dataset's
# full-precision ResNet-32 (baseline and teacher), then its hybrid initialised from and distilled
# from it, export the hybrid with parity and calibration, and leave everything under $OUT.
# Nothing to install there (torch, onnx, onnxruntime are present). See training/README.md,
# "Training on a lent GPU".
#
#   bash training/gpu_run.sh DATASET FP_MINUTES HYBRID_MINUTES [key=value ...]
#
# DATASET is cifar10 or cifar100: the shipped recipes training/configs/DATASET-fp32.json and
# DATASET-w*.json (the CPU campaign's presets) with the GPU's overrides below (device=cuda, batch
# 512, a higher peak lr, the schedule annealed to a wall-clock budget, runs under RUNS). The
# key=value overrides go to both stages and come last (device=cpu for a rehearsal).
# Each stage's budget is wall-clock training time (one-cycle annealed to it); add ~1.5 min for
# loading, the stage switch and the export: the device tool stops a command at 10 min.
# Expects both archive halves under data/device/ (carried one per call) unless DATA says otherwise.
#
# Environment: PYTHON (default python3), OUT (default out), RUNS (default runs), DATA (default the
# archives under data/device/), MODEL_OUT (default models/DATASET: the export overwrites the shipped
# model there; compare before committing).
set -euo pipefail
dataset=$1; fp_minutes=$2; hybrid_minutes=$3; shift 3
export PYTHONUNBUFFERED=1
out=${OUT:-out}; runs=${RUNS:-runs}; model_out=${MODEL_OUT:-models/$dataset}
python=${PYTHON:-$(command -v python3)}
fp_config=training/configs/$dataset-fp32.json
hybrid_config=$(ls training/configs/"$dataset"-w*.json)  # cifar10-w* does not match cifar100-*
gpu=(device=cuda out_dir="$runs" batch_size=512 epochs=200)  # epochs: an upper bound, the budget ends it
field() {  # field FILE KEY [KEY ...]: a (nested) value of a JSON file
  "$python" -c "import functools,json,sys; print(functools.reduce(lambda v, k: v[k], sys.argv[2:], json.load(open(sys.argv[1]))))" "$@"
}
fp_name=$(field "$fp_config" name); hybrid_name=$(field "$hybrid_config" name)
# the shipped model's calibration goal (e.g. edge=0.67), read before the export replaces it
goal=$(field "models/$dataset/manifest.json" exit calibration goal)
data=${DATA:-data/device/$dataset-train-*.tar.gz}
ls $data >/dev/null  # fail early if the archives were not carried
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

# Stage 1: the full-precision network. Its run comes back on its own, so a later failure or a
# timeout still returns a new baseline and teacher.
"$python" -m training.train --config "$fp_config" data="$data" "${gpu[@]}" lr=0.4 warmup_epochs=3 \
  time_budget_minutes="$fp_minutes" "$@" 2>&1 | tee "$out/train.log"
tar -czf "$out/$fp_name.tar.gz" -C "$runs" "$fp_name/model.pt" "$fp_name/log.jsonl"

# Stage 2: the hybrid, from and distilled from stage 1's network.
teacher="$runs/$fp_name/model.pt"
"$python" -m training.train --config "$hybrid_config" data="$data" "${gpu[@]}" lr=0.2 init_from="$teacher" \
  teacher="$teacher" time_budget_minutes="$hybrid_minutes" "$@" 2>&1 | tee -a "$out/train.log"
tar -czf "$out/$hybrid_name.tar.gz" -C "$runs" "$hybrid_name/model.pt" "$hybrid_name/log.jsonl"

"$python" -m training.export --checkpoint "$runs/$hybrid_name/model.pt" --out "$model_out" --name "$dataset" \
  --data "$data" --goal "$goal" --baseline "$teacher" 2>&1 | tee -a "$out/train.log"
tar -czf "$out/model-$dataset.tar.gz" -C "$(dirname "$model_out")" "$(basename "$model_out")"
ls -la "$out"

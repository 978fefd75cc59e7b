#!/usr/bin/env bash
# Local twin of cli/emotion-detection.sh, offline: fine-tune for emotion detection, evaluate, render the card.
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/emotion-detection); PROCESSES: fine-tune on
# that many local processes per node (torchrun, as Azure ML's process_count_per_instance;
# default 1); INSTANCES: on that many simulated nodes (as Azure ML's instance_count; default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/emotion-detection}
distilbert-catalog run pipelines/emotion-detection.yaml --output-dir "$OUT" \
  --set model_name="$MODEL" --set num_train_epochs="${EPOCHS:-4}" \
  --set learning_rate="${LEARNING_RATE:-0.0001}" \
  --set process_count_per_instance="${PROCESSES:-1}" --set instance_count="${INSTANCES:-1}"

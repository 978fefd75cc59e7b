#!/usr/bin/env bash
# Local twin of cli/extractive-qa.sh, offline: fine-tune for extractive QA, gate faster backends, evaluate, render the card.
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/extractive-qa); EPOCHS, MAX_SEQ_LENGTH,
# DOC_STRIDE, QUANTIZATION_AWARE: the pipeline inputs of the same names (defaults: the recipe).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/extractive-qa}
distilbert-catalog run pipelines/extractive-qa.yaml --output-dir "$OUT" \
  --set model_name="$MODEL" --set num_train_epochs="${EPOCHS:-3}" \
  --set max_seq_length="${MAX_SEQ_LENGTH:-384}" --set doc_stride="${DOC_STRIDE:-128}" \
  --set quantization_aware="${QUANTIZATION_AWARE:-false}"

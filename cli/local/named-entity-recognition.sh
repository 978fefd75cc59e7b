#!/usr/bin/env bash
# Local twin of cli/named-entity-recognition.sh, offline: fine-tune for named-entity recognition, evaluate, render the card.
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/named-entity-recognition).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/named-entity-recognition}
distilbert-catalog run pipelines/named-entity-recognition.yaml --output-dir "$OUT" \
  --set model_name="$MODEL" --set num_train_epochs="${EPOCHS:-6}"

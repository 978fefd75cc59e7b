#!/usr/bin/env bash
# Local twin of cli/fill-mask-batch-endpoint.sh, offline: score a folder of texts like the fill-mask batch deployment.
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/fill-mask-batch-endpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/fill-mask-batch-endpoint}
distilbert-catalog package "$MODEL" "$OUT/model" --task fill-mask
distilbert-catalog batch "$OUT/model" cli/requests/fill-mask-batch --output-dir "$OUT/batch" \
  --deployment components/deploy/batch/fill_mask/deployment.yaml --no-progress

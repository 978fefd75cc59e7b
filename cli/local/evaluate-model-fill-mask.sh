#!/usr/bin/env bash
# Local twin of cli/evaluate-model-fill-mask.sh, offline: fill-mask evaluation and its card.
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/evaluate-model-fill-mask).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/evaluate-model-fill-mask}
distilbert-catalog run pipelines/fill-mask-evaluation.yaml --output-dir "$OUT" \
  --set model_name="$MODEL" --set pseudo_perplexity_samples="${PSEUDO_PERPLEXITY_SAMPLES:-100}"

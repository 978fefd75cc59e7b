#!/usr/bin/env bash
# Local twin of cli/evaluate-model-question-answering.sh, offline: SQuAD v2 evaluation of a QA model, and its card.
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/evaluate-model-question-answering).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/evaluate-model-question-answering}
distilbert-catalog run pipelines/squad-v2-evaluation.yaml --output-dir "$OUT" \
  --set model_name="$MODEL" --set max_seq_length="${MAX_SEQ_LENGTH:-384}" \
  --set doc_stride="${DOC_STRIDE:-128}"

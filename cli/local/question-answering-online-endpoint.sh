#!/usr/bin/env bash
# Local twin of cli/question-answering-online-endpoint.sh, offline: ask two questions of an online endpoint (azmlinfsrv).
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/question-answering-online-endpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/question-answering-online-endpoint}
distilbert-catalog package "$MODEL" "$OUT/model" --task question-answering
bash cli/local/lib/serve-and-invoke.sh "$OUT/model" cli/requests/question-answering.json \
  "$OUT/response.json" "${PORT:-5001}"

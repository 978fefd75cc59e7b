#!/usr/bin/env bash
# Local twin of cli/fill-mask-online-endpoint.sh, offline: fill two masks through an online endpoint (azmlinfsrv).
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/fill-mask-online-endpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/fill-mask-online-endpoint}
distilbert-catalog package "$MODEL" "$OUT/model" --task fill-mask
bash cli/local/lib/serve-and-invoke.sh "$OUT/model" cli/requests/fill-mask.json \
  "$OUT/response.json" "${PORT:-5001}"

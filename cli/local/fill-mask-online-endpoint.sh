#!/usr/bin/env bash
# Local twin of cli/fill-mask-online-endpoint.sh, offline: fill two masks through an online endpoint (azmlinfsrv).
# MODEL: a model folder (default: the pretrained offline DistilBERT, standing in for the hub
# checkpoint); OUT: the output folder (default: out/fill-mask-online-endpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-$(distilbert-catalog pretrained)}
OUT=${OUT:-out/fill-mask-online-endpoint}
PORT=${PORT:-5001}
distilbert-catalog package "$MODEL" "$OUT/model" --task fill-mask
distilbert-catalog serve "$OUT/model" --port "$PORT" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
# the first request waits for the server to load the model (at most 2 minutes)
for _ in $(seq 60); do
  if distilbert-catalog invoke --url "http://127.0.0.1:$PORT/score" \
      --request-file cli/requests/fill-mask.json > "$OUT/response.json" 2>/dev/null; then
    cat "$OUT/response.json"
    exit 0
  fi
  kill -0 "$SERVER" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 2
done
echo "no answer from the server on port $PORT" >&2
exit 1

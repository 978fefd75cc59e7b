#!/usr/bin/env bash
# Serve MODEL_DIR under azmlinfsrv on PORT, POST REQUEST_FILE once it answers, print the response
# (also written to RESPONSE_FILE) and stop the server. Used by the online-endpoint local twins.
# Usage: serve-and-invoke.sh MODEL_DIR REQUEST_FILE RESPONSE_FILE [PORT]
set -euo pipefail
MODEL_DIR=$1 REQUEST_FILE=$2 RESPONSE_FILE=$3 PORT=${4:-5001}
distilbert-catalog serve "$MODEL_DIR" --port "$PORT" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
# the first request waits for the server to load the model (at most 2 minutes)
for _ in $(seq 60); do
  if distilbert-catalog invoke --url "http://127.0.0.1:$PORT/score" \
      --request-file "$REQUEST_FILE" > "$RESPONSE_FILE" 2>/dev/null; then
    cat "$RESPONSE_FILE"
    exit 0
  fi
  kill -0 "$SERVER" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 2
done
echo "no answer from the server on port $PORT" >&2
exit 1

#!/usr/bin/env bash
# Fine-tune DistilBERT for emotion detection (text classification), evaluate it and render its card.
# Azure ML CLI v2 (az extension add -n ml), signed in (az login), with a default workspace:
#   az configure --defaults group=<resource-group> workspace=<workspace>
# Local twin, offline, with distilbert-catalog instead of az: cli/local/emotion-detection.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Pipeline inputs can be overridden, e.g. --set inputs.num_train_epochs=1
az ml job create --file pipelines/emotion-detection.yaml --stream "$@"

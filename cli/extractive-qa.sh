#!/usr/bin/env bash
# Fine-tune DistilBERT for extractive QA (SQuAD v2), gate faster backends, evaluate, card.
# Azure ML CLI v2 (az extension add -n ml), signed in (az login), with a default workspace:
#   az configure --defaults group=<resource-group> workspace=<workspace>
# Local twin, offline, with distilbert-catalog instead of az: cli/local/extractive-qa.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Pipeline inputs can be overridden, e.g. --set inputs.num_train_epochs=1
az ml job create --file pipelines/extractive-qa.yaml --stream "$@"

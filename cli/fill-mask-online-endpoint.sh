#!/usr/bin/env bash
# Deploy distilbert-base-uncased (fill-mask) behind an online endpoint and fill two masks.
# Azure ML CLI v2 (az extension add -n ml), signed in (az login), with a default workspace:
#   az configure --defaults group=<resource-group> workspace=<workspace>
# Local twin, offline, with distilbert-catalog instead of az: cli/local/fill-mask-online-endpoint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=distilbert-base-uncased
ENDPOINT=${ENDPOINT:-distilbert-fm-$RANDOM}
# the catalog's MLflow model from the hub checkpoint, registered from its model asset
distilbert-catalog package "$MODEL" "model_cards/$MODEL/mlflow_model_folder"
az ml model create --file "model_cards/$MODEL/model.yaml"
az ml online-endpoint create --file components/deploy/online/endpoint.yaml --name "$ENDPOINT"
az ml online-deployment create --file components/deploy/online/deployment.yaml \
  --endpoint-name "$ENDPOINT" --set model="azureml:$MODEL:1" --all-traffic
az ml online-endpoint invoke --name "$ENDPOINT" --request-file cli/requests/fill-mask.json
# delete the endpoint when done (it bills while it exists)
az ml online-endpoint delete --name "$ENDPOINT" --yes --no-wait

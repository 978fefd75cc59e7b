#!/usr/bin/env bash
# Score a folder of texts with distilbert-base-uncased (fill-mask) on a batch endpoint.
# Azure ML CLI v2 (az extension add -n ml), signed in (az login), with a default workspace:
#   az configure --defaults group=<resource-group> workspace=<workspace>
# Local twin, offline, with distilbert-catalog instead of az: cli/local/fill-mask-batch-endpoint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=distilbert-base-uncased
ENDPOINT=${ENDPOINT:-distilbert-fm-batch-$RANDOM}
distilbert-catalog package "$MODEL" "model_cards/$MODEL/mlflow_model_folder"
az ml model create --file "model_cards/$MODEL/model.yaml"
az ml batch-endpoint create --file components/deploy/batch/fill_mask/endpoint.yaml --name "$ENDPOINT"
az ml batch-deployment create --file components/deploy/batch/fill_mask/deployment.yaml \
  --endpoint-name "$ENDPOINT" --set model="azureml:$MODEL:1" --set-default
JOB=$(az ml batch-endpoint invoke --name "$ENDPOINT" --input cli/requests/fill-mask-batch \
  --input-type uri_folder --query name --output tsv)
az ml job stream --name "$JOB"
az ml job download --name "$JOB" --output-name score --download-path batch-out
az ml batch-endpoint delete --name "$ENDPOINT" --yes --no-wait

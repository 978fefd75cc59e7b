"""Online scoring: one predictor per process, every catalog request format, 400s for bad input."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..packaging import load_predictor
from .request_parsing import parse_request

log = logging.getLogger("distilbert_catalog.serving")

try:  # azureml-inference-server-http >= 1.0
    from azureml_inference_server_http.api.aml_response import AMLResponse
except ImportError:  # older images ship the contrib shim
    from azureml.contrib.services.aml_response import AMLResponse  # type: ignore


def model_dir_from_env() -> Path:
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: the inference server sets it to the "
                           "deployed model's folder (azmlinfsrv --model_dir DIR)")
    return Path(model_dir)


def predictor_from_env():
    """Load the deployed model once, with precision/batch size from the deployment's env vars."""
    return load_predictor(model_dir_from_env(),
                          precision=os.environ.get("DISTILBERT_PRECISION", "auto"),
                          batch_size=int(os.environ.get("DISTILBERT_BATCH_SIZE", "32")))


class OnlineScorer:
    def __init__(self, predictor):
        self.predictor = predictor

    def __call__(self, raw: Any):
        """Answer one request body; client errors become HTTP 400 with a message, here only."""
        try:
            rows, params = parse_request(raw, self.predictor.task)
            return self.predictor.predict(rows, params)
        except BadRequest as exc:
            log.info("400: %s", exc)
            return AMLResponse({"error": str(exc)}, 400, json_str=True)

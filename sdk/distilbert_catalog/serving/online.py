"""Online scoring: one predictor per process, every catalog request format, limits, one error
boundary (4xx for what the client can fix, 500 with a request id for bugs)."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

from ..defaults import BATCH_SIZE_ENV, INFERENCE_BATCH_SIZE
from ..errors import BadRequest
from ..hardware import same_cpu_kind
from ..inference import load_predictor
from .limits import Limits
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
    """Load the deployed model once, with backend/batch size from the deployment's env vars."""
    requested = os.environ.get("DISTILBERT_BACKEND", "auto")
    predictor = load_predictor(model_dir_from_env(), backend=requested,
                               batch_size=int(os.environ.get(BATCH_SIZE_ENV,
                                                             INFERENCE_BATCH_SIZE)))
    log.warning("serving a %s model on backend %s (DISTILBERT_BACKEND=%s, %s)",
                predictor.task.name, predictor.backend, requested,
                gate_note(predictor.gate))
    return predictor


def gate_note(gate) -> str:
    if not gate:
        return "no gate record"
    if not same_cpu_kind(gate.get("cpu")):
        return "gate record measured on another kind of CPU, ignored"
    return "gate record present"


class OnlineScorer:
    """The one error boundary of online scoring.

    * :class:`BadRequest` (raised only while the request is parsed and validated) -> its HTTP
      status (400, or 413 past a size limit) with ``{"error": "<what to fix>"}``;
    * anything else is a bug -> logged with its traceback and the request id -> 500 with
      ``{"error": ..., "request_id": ...}`` (the id is also the ``x-request-id`` header the
      inference server returns, so a user can quote it and the log line can be found).
    """

    def __init__(self, predictor, limits: Limits | None = None):
        self.predictor = predictor
        self.limits = Limits.from_env() if limits is None else limits

    def __call__(self, raw: Any, request_id: str | None = None):
        """Answer one request body (JSON text, bytes, or already-parsed JSON)."""
        try:
            rows, params = parse_request(raw, self.predictor.task, self.limits)
            return self.predictor.predict(rows, params)
        except BadRequest as exc:
            return self.client_error(exc)
        except Exception:  # noqa: BLE001 - the boundary: every other failure is a bug -> 500
            request_id = request_id or current_request_id() or uuid.uuid4().hex
            log.exception("500 (request id %s): scoring failed", request_id)
            return AMLResponse({"error": "internal error while scoring; the server log has the "
                                         f"traceback under request id {request_id}",
                                "request_id": request_id}, 500, json_str=True)

    def handle(self, request):
        """Answer a raw HTTP request (a flask request, from ``@rawhttp``).

        The body size is checked from ``Content-Length`` before the body is read, and a body
        without one is read only up to the limit, so an oversized request costs no memory.
        """
        if request.method != "POST":
            return AMLResponse({"error": f"{request.method} is not supported on /score; POST a "
                                         "JSON body"}, 405, json_str=True)
        try:
            declared = request.content_length
            if declared is not None:
                self.limits.check_body_size(declared)
                body = request.get_data(cache=False)
            else:  # chunked: read at most one byte past the limit
                body = request.stream.read(self.limits.max_body_bytes + 1)
                self.limits.check_body_size(len(body))
        except BadRequest as exc:
            return self.client_error(exc)
        return self(body, request_id=current_request_id())

    @staticmethod
    def client_error(exc: BadRequest):
        log.info("%d: %s", exc.status, exc)
        return AMLResponse({"error": str(exc)}, exc.status, json_str=True)


def current_request_id() -> str | None:
    """The id azmlinfsrv gives this request (``x-request-id``, sent back as a header)."""
    try:
        import flask

        if flask.has_request_context():
            return getattr(flask.g, "request_id", None) or flask.request.headers.get(
                "x-request-id")
    except ImportError:  # pragma: no cover - flask comes with the inference server
        pass
    return None

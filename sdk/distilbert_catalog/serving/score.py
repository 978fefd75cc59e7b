"""Azure ML online endpoint scoring script (``init()`` / ``run(request)``), for every task.

Deploy with ``code_configuration.scoring_script`` pointing here; the model's task comes from the
MLflow model's metadata (or the Hugging Face head), so one script serves every catalog task.

``run`` takes the raw HTTP request (``@rawhttp``) rather than the body as a string, so the body
size limit is checked from ``Content-Length`` before the inference server reads the body, and
nesting depth before anything parses it (see :mod:`distilbert_catalog.serving.limits`).
"""

try:  # azureml-inference-server-http >= 1.0
    from azureml_inference_server_http.api.aml_request import rawhttp
except ImportError:  # older images ship the contrib shim
    from azureml.contrib.services.aml_request import rawhttp

from distilbert_catalog.serving.online import OnlineScorer, predictor_from_env

scorer = None


def init():
    global scorer
    scorer = OnlineScorer(predictor_from_env())


@rawhttp
def run(request):
    return scorer.handle(request)

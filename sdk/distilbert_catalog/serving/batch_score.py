"""Azure ML batch endpoint scoring script: ``init()`` once per worker, ``run(mini_batch)`` per list of files.

``run`` returns a DataFrame with one row per input row (``file``, ``row``, the task's outputs,
``error``), for ``output_action: append_row``; a bad row or an unreadable file becomes an error row
instead of failing the mini-batch. Request parameters for every row (e.g. ``{"top_k": 3}``) come
from the deployment's ``DISTILBERT_PARAMS`` environment variable, as JSON. The local runner
(``distilbert-catalog batch``) runs this same script in its worker processes.
"""

import json
import os

from distilbert_catalog.serving.batch import BatchScorer
from distilbert_catalog.serving.online import predictor_from_env

scorer = None


def init():
    global scorer
    scorer = BatchScorer(predictor_from_env(), json.loads(os.environ.get("DISTILBERT_PARAMS") or "{}"))


def run(mini_batch):
    return scorer([str(path) for path in mini_batch])

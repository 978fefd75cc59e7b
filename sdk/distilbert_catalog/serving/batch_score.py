"""Azure ML batch endpoint scoring script: ``init()`` once, ``run(mini_batch)`` per file list.

Request parameters for every row (e.g. ``{"top_k": 3}``) come from the deployment's
``DISTILBERT_PARAMS`` environment variable, as JSON.
"""

import json
import os

from distilbert_catalog.serving.batch import BatchScorer
from distilbert_catalog.serving.online import predictor_from_env

scorer = None


def init():
    global scorer
    scorer = BatchScorer(predictor_from_env(), json.loads(os.environ.get("DISTILBERT_PARAMS",
                                                                         "{}")))


def run(mini_batch):
    return scorer(mini_batch)

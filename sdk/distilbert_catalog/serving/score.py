"""Azure ML online endpoint scoring script (``init()`` / ``run(raw_data)``), for every task.

Deploy with ``code_configuration.scoring_script`` pointing here; the model's task comes from the
MLflow model's metadata (or the Hugging Face head), so one script serves every catalog task.
"""

from distilbert_catalog.serving.online import OnlineScorer, predictor_from_env

scorer = None


def init():
    global scorer
    scorer = OnlineScorer(predictor_from_env())


def run(raw_data):
    return scorer(raw_data)

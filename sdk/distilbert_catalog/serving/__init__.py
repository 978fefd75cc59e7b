"""Scoring: the online entry script azmlinfsrv runs (``score.py``), the batch one
(``batch_score.py``), and the request parsing and limits they share."""

from pathlib import Path

#: the online endpoint's entry script (``init()`` / ``run()``), as the deployment YAML names it
SCORE_SCRIPT = Path(__file__).resolve().parent / "score.py"

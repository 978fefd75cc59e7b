"""Catalog component entry: components/gate/question_answering (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("gate/question_answering"))

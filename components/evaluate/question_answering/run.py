"""Catalog component entry: components/evaluate/question_answering (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("evaluate/question_answering"))

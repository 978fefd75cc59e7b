"""Catalog component entry: components/distill/question_answering (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("distill/question_answering"))

"""Catalog component entry: components/finetune/question_answering (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("finetune/question_answering"))

"""Catalog component entry: components/evaluate/token_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("evaluate/token_classification"))

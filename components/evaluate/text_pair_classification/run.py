"""Catalog component entry: components/evaluate/text_pair_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("evaluate/text_pair_classification"))

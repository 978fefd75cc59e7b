"""Catalog component entry: components/distill/token_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("distill/token_classification"))

"""Catalog component entry: components/distill/text_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("distill/text_classification"))

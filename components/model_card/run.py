"""Catalog component entry: components/model_card (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("model_card"))

"""Catalog component entry: components/gate/token_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("gate/token_classification"))

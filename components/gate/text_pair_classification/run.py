"""Catalog component entry: components/gate/text_pair_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("gate/text_pair_classification"))

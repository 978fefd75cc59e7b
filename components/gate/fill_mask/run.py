"""Catalog component entry: components/gate/fill_mask (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("gate/fill_mask"))

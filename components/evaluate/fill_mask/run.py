"""Catalog component entry: components/evaluate/fill_mask (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("evaluate/fill_mask"))

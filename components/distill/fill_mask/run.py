"""Catalog component entry: components/distill/fill_mask (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("distill/fill_mask"))

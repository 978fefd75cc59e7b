"""Catalog component entry: components/finetune/token_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("finetune/token_classification"))

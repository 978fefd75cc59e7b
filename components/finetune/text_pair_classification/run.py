"""Catalog component entry: components/finetune/text_pair_classification (arguments: see spec.yaml)."""

import sys

from distilbert_catalog.components import main

sys.exit(main("finetune/text_pair_classification"))

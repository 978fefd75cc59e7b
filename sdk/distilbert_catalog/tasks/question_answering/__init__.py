"""Extractive question answering: windowing, span decoding and SQuAD v2 metrics."""

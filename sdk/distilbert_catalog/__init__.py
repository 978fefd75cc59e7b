"""DistilBERT plugin for an Azure ML-style model catalog."""

__version__ = "0.1.0"

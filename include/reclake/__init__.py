"""reclake: the offline data lakehouse behind recommendation training data."""

__version__ = "0.1.0"

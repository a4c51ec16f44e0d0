"""textrnn: a reproducible pipeline for recurrent text models."""

__version__ = "0.1.0"

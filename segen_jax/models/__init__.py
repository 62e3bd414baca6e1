"""Flax NNX models, one file per family."""
from segen_jax.models.classifier import Classifier

__all__ = ["Classifier"]

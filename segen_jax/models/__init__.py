"""Flax NNX models, one file per family."""
from segen_jax.models.classifier import Classifier
from segen_jax.models.fcn import FCN, ConvTranspose, TinyFCN, from_classifier

__all__ = ["FCN", "Classifier", "ConvTranspose", "TinyFCN", "from_classifier"]

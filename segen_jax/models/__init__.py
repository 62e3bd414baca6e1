"""Flax NNX models, one file per family."""
from segen_jax.models.classifier import Classifier
from segen_jax.models.crf import DenseCRF, dense_crf
from segen_jax.models.deeplab import ASPP, DeepLabV3, DeepLabV3Plus
from segen_jax.models.fcn import FCN, ConvTranspose, TinyFCN, from_classifier

__all__ = ["ASPP", "FCN", "Classifier", "ConvTranspose", "DeepLabV3", "DeepLabV3Plus", "DenseCRF",
           "TinyFCN", "dense_crf", "from_classifier"]

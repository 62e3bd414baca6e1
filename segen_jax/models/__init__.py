"""Flax NNX models, one file per family."""
from segen_jax.models.classifier import Classifier
from segen_jax.models.crf import DenseCRF, dense_crf
from segen_jax.models.deeplab import ASPP, DeepLabV3, DeepLabV3Plus
from segen_jax.models.fcn import FCN, ConvTranspose, TinyFCN, from_classifier
from segen_jax.models.gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                                  MLPGenerator, pack_samples)
from segen_jax.models.vae import VAE, reparameterize

__all__ = ["ASPP", "FCN", "Classifier", "ConvTranspose", "DCGANDiscriminator", "DCGANGenerator",
           "DeepLabV3", "DeepLabV3Plus", "DenseCRF", "MLPDiscriminator", "MLPGenerator",
           "TinyFCN", "VAE", "dense_crf", "from_classifier", "pack_samples", "reparameterize"]

"""From-scratch ops in plain jax.numpy / lax, each checked against XLA's own in the tests."""
from segen_jax.ops.conv import (conv2d, conv2d_backward, conv2d_im2col, conv_output_size,
                                convolve2d, im2col, receptive_field)

__all__ = ["conv2d", "conv2d_backward", "conv2d_im2col", "conv_output_size", "convolve2d",
           "im2col", "receptive_field"]

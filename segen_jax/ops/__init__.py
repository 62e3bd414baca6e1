"""From-scratch ops in plain jax.numpy / lax, each checked against XLA's own in the tests."""
from segen_jax.ops.conv import (conv2d, conv2d_backward, conv2d_im2col, conv_output_size,
                                convolve2d, effective_kernel_size, gradient_support, im2col,
                                receptive_field, receptive_field_support)
from segen_jax.ops import conv_one_channel, conv_strips
from segen_jax.ops.conv_transpose import conv_transpose2d, transposed_output_size
from segen_jax.ops.pool import (avg_pool2d, avg_pool2d_backward, global_avg_pool, max_pool2d,
                                max_pool2d_backward)
from segen_jax.ops.upsample import bilinear_kernel, bilinear_upsample

__all__ = ["avg_pool2d", "avg_pool2d_backward", "bilinear_kernel", "bilinear_upsample",
           "conv2d", "conv2d_backward", "conv2d_im2col", "conv_output_size", "conv_transpose2d",
           "convolve2d", "effective_kernel_size", "global_avg_pool", "gradient_support", "im2col",
           "max_pool2d", "max_pool2d_backward",
           "receptive_field", "receptive_field_support", "transposed_output_size"]

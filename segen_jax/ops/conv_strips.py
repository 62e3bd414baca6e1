"""XLA's convolution with its weight gradient taken in row strips when the batch is small.

A stride-s, dilation-d convolution y = x ⋆ w (NHWC, kernel HWIO (kh, kw, C_in, C_out), x padded
to x_pad) has the weight gradient

    ∂L/∂w[a, b, c, o] = Σ_n Σ_i Σ_j x_pad[n, s·i + d·a, s·j + d·b, c] · ∂L/∂y[n, i, j, o],

which XLA computes as one more convolution, of x_pad with ∂L/∂y as the kernel, where the batch
N becomes that convolution's feature axis. On XLA:CPU (jaxlib 0.10.2, Eigen's convolutions
under `train.CPU_OPTIONS`) that convolution takes about as long for 1 image as for 8 (for 64x64
maps, 32 → 16 channels: 5.9 ms at N = 1, 5.5 at N = 4, 5.2 at N = 8), so below 8 images it is
2-9x slower than the strips below, which take 1.0-1.5x the time of PyTorch's weight gradient
(`python -m benchmarks.conv_strips`, benchmarks/RESULTS_conv_strips.md).
The sum over the output rows i splits into S strips of R = H_out / S consecutive rows; strip
t needs the input rows [s·R·t, s·R·t + L) of x_pad, L = s·(R − 1) + d·(kh − 1) + 1. Stacking
the S strips of each image as images of their own,

    x_strips[(n, t)] = x_pad[n, s·R·t : s·R·t + L],   ∂L/∂y_strips[(n, t)] = ∂L/∂y[n, R·t : R·(t+1)],

gives N·S images whose unpadded ("VALID") convolution has the same weight gradient, since each
term of the sum above appears in exactly one strip. `conv_general_dilated` takes S as the
smallest divisor of H_out with N·S >= 8 (`strip_count`), and computes the forward pass and the
input gradient as XLA does (the same lax calls, so the same numbers); only ∂L/∂w is summed in
another order (float rounding).

Used by the models' `nnx.Conv` layers (`nnx.Conv(..., conv_general_dilated=...)`); on other
backends, for N >= 8 and outside the case above (2-D NHWC/HWIO, no input dilation, one feature
group, no sharding or preferred element type) it is `lax.conv_general_dilated` itself. Its
strip path is a `jax.custom_vjp`: reverse mode to any order works, forward mode (`jax.jvp`,
`jax.jacfwd`) does not.
"""
import functools
import operator

import jax
import jax.numpy as jnp
from jax import lax

MIN_IMAGES = 8   # the weight gradient's batch from which XLA:CPU's convolution runs at full speed
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def strip_count(batch: int, rows: int) -> int:
    """S, the strips the output's `rows` are cut into for a batch of `batch` images: the
    smallest divisor of rows with batch·S >= MIN_IMAGES (rows itself if there is none; 1 for
    an output without rows)."""
    for strips in range(1, rows + 1):
        if rows % strips == 0 and batch * strips >= MIN_IMAGES:
            return strips
    return max(rows, 1)


def _conv(x, w, strides, padding, dilation, precision):
    return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=_DIMENSIONS, precision=precision)


def weight_gradient_in_strips(x, dy, kernel_shape, *, strides, padding, dilation, strips,
                              precision=None):
    """∂L/∂w (kernel_shape = (kh, kw, C_in, C_out)) of y = conv(x, w) given dy = ∂L/∂y, by the
    row strips of the module docstring. x (N, H, W, C_in), dy (N, H_out, W_out, C_out),
    padding ((top, bottom), (left, right)), strips must divide H_out."""
    rows = dy.shape[1]
    if strips < 1 or rows % strips:
        raise ValueError(f"weight_gradient_in_strips: strips must be a positive divisor of the "
                         f"output's {rows} rows, got {strips}")
    (top, bottom), (left, right) = padding
    zero = jnp.zeros((), x.dtype)
    x_pad = lax.pad(x, zero, ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))
    per_strip = rows // strips
    length = strides[0] * (per_strip - 1) + dilation[0] * (kernel_shape[0] - 1) + 1
    step = strides[0] * per_strip
    x_strips = jnp.stack([x_pad[:, step * t:step * t + length] for t in range(strips)], axis=1)
    x_strips = x_strips.reshape(-1, length, *x_pad.shape[2:])
    dy_strips = dy.reshape(-1, per_strip, *dy.shape[2:])
    valid = ((0, 0), (0, 0))
    zeros = jnp.zeros(kernel_shape, x.dtype)
    return jax.vjp(lambda w: _conv(x_strips, w, strides, valid, dilation, precision),
                   zeros)[1](dy_strips)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv_strips(x, w, strides, padding, dilation, precision):
    return _conv(x, w, strides, padding, dilation, precision)


def _forward(x, w, strides, padding, dilation, precision):
    return _conv(x, w, strides, padding, dilation, precision), (x, w)


def _backward(strides, padding, dilation, precision, residuals, dy):
    x, w = residuals
    dx = jax.vjp(lambda v: _conv(v, w, strides, padding, dilation, precision), x)[1](dy)[0]
    strips = strip_count(*dy.shape[:2])
    if strips == 1:       # XLA's own
        dw = jax.vjp(lambda v: _conv(x, v, strides, padding, dilation, precision), w)[1](dy)[0]
    else:
        dw = weight_gradient_in_strips(x, dy, w.shape, strides=strides, padding=padding,
                                       dilation=dilation, strips=strips, precision=precision)
    return dx, dw


_conv_strips.defvjp(_forward, _backward)


def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, **kwargs):
    """`lax.conv_general_dilated` (same arguments, same result) whose weight gradient is taken
    in row strips on the CPU when the batch is below MIN_IMAGES (module docstring)."""
    spatial = lhs.ndim - 2
    lhs_dilation = tuple(lhs_dilation or (1,) * spatial)
    rhs_dilation = tuple(rhs_dilation or (1,) * spatial)
    plain = (spatial != 2 or lhs.shape[0] >= MIN_IMAGES or not _on_cpu()
             or feature_group_count != 1 or batch_group_count != 1
             or any(d != 1 for d in lhs_dilation)
             or set(kwargs) - {"preferred_element_type", "out_sharding"}   # lax says why
             or any(value is not None for value in kwargs.values())
             or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
             != lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DIMENSIONS))
    if plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        batch_group_count, precision, **kwargs)
    if isinstance(padding, str):
        extent = [d * (k - 1) + 1 for k, d in zip(rhs.shape[:2], rhs_dilation)]
        padding = lax.padtype_to_pads(lhs.shape[1:3], extent, window_strides, padding)
    padding = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
    return _conv_strips(lhs, rhs, tuple(operator.index(s) for s in window_strides), padding,
                        rhs_dilation, precision)

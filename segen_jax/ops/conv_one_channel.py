"""XLA's convolution of one-channel images computed as kh·kw scaled shifted copies on the CPU.

A model's first layer sees grey images, C_in = 1. Its stride-1 convolution (NHWC, kernel HWIO
(kh, kw, 1, C_out), dilation (d, e), x zero-padded to x_pad)

    y[n, i, j, o] = Σ_p Σ_q x_pad[n, i + d·p, j + e·q, 0] · w[p, q, 0, o]

has no sum over channels: it is kh·kw copies of the padded image, each shifted by (d·p, e·q)
and scaled by the C_out weights w[p, q, 0, :], added up. That is what `ops.conv2d` (the direct
method) computes, and XLA:CPU fuses it into one elementwise loop. XLA:CPU's own convolution
(jaxlib 0.10.2, Eigen's under `train.CPU_OPTIONS`) does the same work 1.4-4.1x slower: for
3x3, 1 → 16 channels, forward pass and ∂L/∂w together 1.13 against 0.45 ms for 4 images of
64x64, 1.93 against 0.93 ms for 8 (`python -m benchmarks.conv_one_channel`,
benchmarks/RESULTS_conv_strips.md). The gradients are JAX's derivatives of the same sum,

    ∂L/∂w[p, q, 0, o] = Σ_{n, i, j} x_pad[n, i + d·p, j + e·q, 0] · ∂L/∂y[n, i, j, o],
    ∂L/∂x_pad = Σ_{p, q} (Σ_o ∂L/∂y[..., o] · w[p, q, 0, o]) shifted back by (d·p, e·q),

reductions and pads that XLA:CPU fuses as well; forward mode (`jax.jvp`) works too (no custom
VJP). Stride 1 only: for stride 2 the forward pass still won (64 digits, 4x4 → 32: 0.53 against
1.52 ms) but the gradient of the strided views lost (forward and ∂L/∂w 4.22 against 2.92 ms;
one-off timings, 2026-12-07).

`conv_general_dilated` takes `lax.conv_general_dilated`'s arguments (a drop-in for
`nnx.Conv(..., conv_general_dilated=...)`) and gives its result, summed in another order
(float rounding). Outside the case above (C_in = 1, stride 1, 2-D NHWC/HWIO, float32 or
float64 for both operands, no input dilation, one group, no precision, sharding or preferred
element type, padding >= 0, an output with pixels) and on other backends it calls `fallback`,
by default `lax.conv_general_dilated` itself, which also raises lax's errors. (In bfloat16 or
float16 the copies would round after every one of the kh·kw terms where XLA rounds once.)
"""
import operator

import jax
import jax.numpy as jnp
from jax import lax

from segen_jax.ops.conv import conv2d

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, *,
                         fallback=lax.conv_general_dilated, **kwargs):
    """`lax.conv_general_dilated` (same arguments, same result up to float rounding), computed
    as scaled shifted copies of the image (module docstring) for one input channel, stride 1
    and float32/float64 on the CPU; `fallback` (default lax's own) everywhere else."""
    pads = _pads(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                 dimension_numbers, feature_group_count, batch_group_count, precision, kwargs)
    if pads is None:
        return fallback(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count, precision,
                        **kwargs)
    x_pad = jnp.pad(lhs, ((0, 0), *pads, (0, 0)))
    return conv2d(x_pad, rhs, padding="VALID", dilation=rhs_dilation or 1)


def _pads(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
          feature_group_count, batch_group_count, precision, kwargs):
    """The ((top, bottom), (left, right)) padding when the shifted copies apply, else None
    (then lax computes, or raises its own error for arguments it refuses)."""
    if (getattr(lhs, "ndim", None) != 4 or getattr(rhs, "ndim", None) != 4 or not _on_cpu()
            or lhs.dtype != rhs.dtype or lhs.dtype not in (jnp.float32, jnp.float64)
            or feature_group_count != 1 or batch_group_count != 1 or precision is not None
            or any(d != 1 for d in (lhs_dilation or ()))
            or set(kwargs) - {"preferred_element_type", "out_sharding"}
            or any(value is not None for value in kwargs.values())
            or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
            != lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DIMENSIONS)
            or lhs.shape[3] != 1 or rhs.shape[2] != 1):
        return None
    try:
        strides = tuple(operator.index(s) for s in window_strides)
        dilation = tuple(operator.index(d) for d in (rhs_dilation or (1, 1)))
        extent = [d * (k - 1) + 1 for k, d in zip(rhs.shape[:2], dilation)]
        if isinstance(padding, str):
            padding = lax.padtype_to_pads(lhs.shape[1:3], extent, window_strides, padding)
        pads = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        return None
    if (strides != (1, 1) or len(dilation) != 2 or min(dilation) < 1 or len(pads) != 2
            or any(p < 0 for pair in pads for p in pair)                 # lax crops; conv2d not
            or any(n + lo + hi < e for n, (lo, hi), e in zip(lhs.shape[1:3], pads, extent))):
        return None                       # (the last: an empty output)
    return pads

"""Bilinear upsampling by an integer factor, and the transposed-convolution kernel that does it.

Bilinear interpolation with half-pixel centres: output pixel j along an axis sits at input
coordinate u = (j + ½)/f − ½ and takes
    out[j] = (1 − t)·x[⌊u⌋] + t·x[⌊u⌋ + 1],   t = u − ⌊u⌋,
with x's first/last pixel repeated beyond the border (what jax.image.resize(..., "bilinear")
does when enlarging). In 2-D the same weights apply along H, then along W.

The weights depend only on the distance between an output pixel and the input pixels it mixes,
so the interpolation is a transposed convolution with stride f and one fixed kernel, the tent
    K[a] = 1 − |a − c| / f,  a = 0 … 2f − 1 − (f mod 2),  c = f − 1 (f odd) or f − ½ (f even),
K2[a, b] = K[a]·K[b], applied to each channel on its own (Long et al.'s FCN initialise their
upsampling layers with it). conv_transpose2d(x, bilinear_kernel(f, C), stride=f, padding=f//2)
treats x as 0 beyond the border, so it equals bilinear_upsample everywhere once x is padded
by one repeated edge pixel and the result cropped by f (or in the interior without padding).
"""
import jax.numpy as jnp
import numpy as np

from segen_jax.ops._common import _array, _is_int


def _factor(fn, factor):
    if not _is_int(factor):
        raise TypeError(f"{fn}: factor must be an int >= 1, got {factor!r}")
    if factor < 1:
        raise ValueError(f"{fn}: factor must be an int >= 1, got {factor}")
    return int(factor)


def bilinear_kernel(factor, channels):
    """(k, k, channels, channels) float32, k = 2·factor − factor mod 2: the tent K[a]·K[b] on
    the diagonal (channel c → c), zeros off it; use with stride=factor, padding=factor // 2."""
    f = _factor("bilinear_kernel", factor)
    if not _is_int(channels):
        raise TypeError(f"bilinear_kernel: channels must be an int >= 1, got {channels!r}")
    if channels < 1:
        raise ValueError(f"bilinear_kernel: channels must be an int >= 1, got {channels!r}")
    size = 2 * f - f % 2
    centre = f - 1 if f % 2 == 1 else f - 0.5
    tent = 1 - np.abs(np.arange(size) - centre) / f
    kernel = np.zeros((size, size, channels, channels), np.float32)
    kernel[:, :, np.arange(channels), np.arange(channels)] = np.outer(tent, tent)[:, :, None]
    return jnp.asarray(kernel)


def _interpolation_matrix(n, f):
    """(n·f, n) weights of bilinear interpolation with half-pixel centres, edges repeated."""
    u = (np.arange(n * f) + 0.5) / f - 0.5
    lo = np.floor(u).astype(int)
    t = u - lo
    m = np.zeros((n * f, n), np.float32)
    rows = np.arange(n * f)
    np.add.at(m, (rows, np.clip(lo, 0, n - 1)), 1 - t)
    np.add.at(m, (rows, np.clip(lo + 1, 0, n - 1)), t)
    return m


def bilinear_upsample(x, factor):
    """x (N, H, W, C) -> (N, factor·H, factor·W, C) by bilinear interpolation (module docstring):
    two small matrix products, out = M_H · x · M_Wᵀ per image and channel."""
    fn = "bilinear_upsample"
    _array(fn, "x", x, "(N, H, W, C)")
    f = _factor(fn, factor)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: x must be a float array, got dtype {x.dtype} (labels are "
                        "upsampled by repeating them, not by interpolation)")
    m_h = jnp.asarray(_interpolation_matrix(x.shape[1], f), x.dtype)
    m_w = jnp.asarray(_interpolation_matrix(x.shape[2], f), x.dtype)
    return jnp.einsum("ah,nhwc,bw->nabc", m_h, x, m_w)

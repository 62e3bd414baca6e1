"""Transposed convolution: the adjoint of conv2d in x, the upsampling layer of FCNs.

conv2d with kernel w, stride s, padding p, dilation d is linear in x: y = C x for a matrix C
(chapter 3 writes it out). Its adjoint (transpose) Cᵀ maps an output-shaped y back to an
input-shaped x and is defined by
    <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>      for all x, y,
so it is exactly the dL/dx of conv2d (conv2d_backward's dx, chapter 1), and jax.linear_transpose
of conv2d computes the same map. Written out, every y pixel scatters a copy of the kernel:
    x_pad[n, i·s + p'·d, j·s + q'·d, c] += y[n, i, j, o] · w[p', q', c, o]
which is a correlation of y, with s − 1 zeros inserted between its rows and columns and
d·(k − 1) − p zeros around it (a negative amount crops), with the flipped kernel
w[::-1, ::-1] whose channel axes are swapped (C_out → C_in).

Output size per axis (PyTorch's ConvTranspose2d rule):
    H' = (H − 1)·s − 2p + d·(k − 1) + output_padding + 1.
conv2d maps ⌊…⌋ several input sizes to the same output size when s > 1; output_padding
(0 ≤ output_padding < s) picks which one, extra rows added at the bottom/right.

Computed, for dilation 1, in the sub-pixel form (_subpixel: s² phases, each an ordinary small
convolution, interleaved), which skips the zeros; otherwise as the correlation above.
"""
import jax.numpy as jnp
from jax import lax

from segen_jax.ops._common import _array, _is_int, _pair
from segen_jax.ops.conv import conv2d


def _sizes(fn, n, k, s, p, op, d):
    out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out < 1:
        raise ValueError(f"{fn}: the output would have (n − 1)·s − 2p + d·(k − 1) + "
                         f"output_padding + 1 = ({n} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1 "
                         f"= {out} pixels; padding {p} is too large for this input and kernel")
    return out


def transposed_output_size(n, k, *, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length along one axis: (n − 1)·s − 2p + d·(k − 1) + output_padding + 1.

    n, k, stride, dilation: ints >= 1; padding >= 0; 0 <= output_padding < stride. Scalars only.
    """
    fn = "transposed_output_size"
    for name, value, minimum in (("n", n, 1), ("k", k, 1), ("stride", stride, 1),
                                 ("padding", padding, 0), ("output_padding", output_padding, 0),
                                 ("dilation", dilation, 1)):
        if not _is_int(value):
            raise TypeError(f"{fn}: {name} must be an int (one spatial axis), got {value!r}")
        if value < minimum:
            raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    if output_padding >= stride:
        raise ValueError(f"{fn}: output_padding must be smaller than stride, got "
                         f"output_padding {output_padding} and stride {stride}")
    return _sizes(fn, n, k, stride, padding, output_padding, dilation)


def conv_transpose2d(y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1):
    """Adjoint of `conv2d` in x: <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>.

    y: (N, H, W, C_out), w: (kh, kw, C_in, C_out) (the same w as conv2d's), b: (C_in,) or None
    -> (N, H', W', C_in), H' = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1.
    stride, dilation: int or pair >= 1; padding: int or pair >= 0 (the padding of the conv2d
    it undoes); output_padding: int or pair with 0 <= output_padding < stride.
    """
    fn = "conv_transpose2d"
    _array(fn, "y", y, "(N, H, W, C_out)")
    _array(fn, "w", w, "(kh, kw, C_in, C_out)")
    if 0 in y.shape or 0 in w.shape:
        raise ValueError(f"{fn}: y and w must be non-empty, got shapes {tuple(y.shape)} and "
                         f"{tuple(w.shape)}")
    if y.shape[3] != w.shape[3]:
        raise ValueError(f"{fn}: y has C_out = {y.shape[3]} channels but w has "
                         f"{w.shape[3]} (w.shape[3], conv2d's output channels)")
    if b is not None:
        _array(fn, "b", b, "(C_in,)")
        if b.shape[0] != w.shape[2]:
            raise ValueError(f"{fn}: b must have shape (C_in,) = ({w.shape[2]},), "
                             f"got shape {tuple(b.shape)}")
    s, d = _pair(fn, "stride", stride, 1), _pair(fn, "dilation", dilation, 1)
    if isinstance(padding, str):
        raise TypeError(f"{fn}: padding must be an int or a pair (h, w) of ints >= 0 (the "
                        f"padding of the conv2d it is the adjoint of), got {padding!r}")
    p, op = _pair(fn, "padding", padding, 0), _pair(fn, "output_padding", output_padding, 0)
    if any(o >= si for o, si in zip(op, s)):
        raise ValueError(f"{fn}: output_padding must be smaller than stride, got "
                         f"output_padding {output_padding!r} and stride {stride!r}")
    for n, k, si, pi, oi, di in zip(y.shape[1:3], w.shape[:2], s, p, op, d):
        _sizes(fn, n, k, si, pi, oi, di)
    if d == (1, 1):
        x = _subpixel(y, w, s, p, op)
        return x if b is None else x + b
    # s − 1 zeros between rows/cols; d·(k − 1) − p around (negative: crop); output_padding more
    # at the bottom/right. lax.pad does all three, and crops for negative amounts.
    edges = [(di * (k - 1) - pi, di * (k - 1) - pi + oi, si - 1)
             for k, si, pi, oi, di in zip(w.shape[:2], s, p, op, d)]
    y_up = lax.pad(y, jnp.zeros((), y.dtype), [(0, 0, 0), *edges, (0, 0, 0)])
    w_t = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)          # (kh, kw, C_out, C_in), flipped
    x = conv2d(y_up, w_t, dilation=d)
    return x if b is None else x + b


def _subpixel(y, w, s, p, op):
    """conv_transpose2d for dilation 1 without the zeros: one small convolution per phase.

    Along one axis, output row a = q·s + r − p (phase r = (a + p) mod s) only meets kernel taps
    k ≡ r (mod s): x[q·s + r] = Σ_m y[q − m]·w[r + m·s]. So every phase is an ordinary
    convolution of y with the sub-kernel w[r::s] (M = ⌈k/s⌉ taps, zero-filled), and all s_h·s_w
    phases are one conv2d with s_h·s_w·C_in output channels, interleaved afterwards
    (depth-to-space). When s divides k it does exactly the k²·C_in·C_out multiply-adds per
    input pixel that the definition needs (otherwise the kernel is zero-filled to (⌈k/s⌉·s)²
    taps, e.g. 16 for 9 at k = 3, s = 2); the zero-inserted form does s² times as many, mostly
    with zeros.
    """
    (kh, kw, c_in, c_out), (sh, sw) = w.shape, s
    mh, mw = -(-kh // sh), -(-kw // sw)
    w = jnp.pad(w, ((0, mh * sh - kh), (0, mw * sw - kw), (0, 0), (0, 0)))
    # w_sub[m', n', o, r_h, r_w, c] = w[r_h + (M_h − 1 − m')·s_h, r_w + (M_w − 1 − n')·s_w, c, o]
    w_sub = jnp.flip(w.reshape(mh, sh, mw, sw, c_in, c_out), (0, 2))
    w_sub = w_sub.transpose(0, 2, 5, 1, 3, 4).reshape(mh, mw, c_out, sh * sw * c_in)
    # M − 1 zeros before y (the sum reaches back M − 1 rows), M after (room for output_padding)
    y_pad = jnp.pad(y, ((0, 0), (mh - 1, mh), (mw - 1, mw), (0, 0)))
    phases = conv2d(y_pad, w_sub)                          # (N, Q_h, Q_w, s_h·s_w·C_in)
    n, qh, qw, _ = phases.shape
    full = phases.reshape(n, qh, qw, sh, sw, c_in).transpose(0, 1, 3, 2, 4, 5)
    full = full.reshape(n, qh * sh, qw * sw, c_in)           # row q·s + r of the uncropped x
    out = [(m - 1) * si - 2 * pi + k + oi for m, si, pi, k, oi in
           zip(y.shape[1:3], s, p, (kh, kw), op)]
    return full[:, p[0]:p[0] + out[0], p[1]:p[1] + out[1], :]

"""2-D convolution from scratch: padding, pad + strided slices + einsum, checked against lax.

Layouts are XLA's: images x (N, H, W, C_in), kernels w (kh, kw, C_in, C_out), NHWC out.
s = stride, d = dilation, x_pad = x zero-padded by p (per side; "SAME" may split unevenly).

conv2d, the cross-correlation that DL layers compute ("direct" method: one einsum per offset):
    y[n, i, j, o] = Σ_{p, q, c} x_pad[n, i·s + p·d, j·s + q·d, c] · w[p, q, c, o]  (+ b[o])
convolve2d, the true convolution of 2-D arrays (kernel flipped), the seed's formula:
    y(i, j) = Σ_p Σ_q x(i − p, j − q) · f(p, q)       ('full': (M + K − 1) per axis)
im2col, the same sum as one matrix product: row (n, i, j) holds the patch
    x_pad[n, i·s + p·d, j·s + q·d, c] in (p, q, c) row-major order, so that
    conv2d(x, w) = im2col(x, (kh, kw)) @ w.reshape(kh·kw·C_in, C_out).
Output size per axis (Dumoulin & Visin, with the dilated kernel k̂ = k + (k − 1)(d − 1)):
    o = ⌊(n + 2p − k̂) / s⌋ + 1;   "VALID": p = 0;   "SAME": o = ⌈n / s⌉, padded in total by
    max((o − 1)·s + k̂ − n, 0), low = total // 2, high = the rest (XLA's rule: the extra
    row of an odd total goes to the bottom/right).
Backward pass (derived by hand, see conv2d_backward):
    dL/dw[p, q, c, o] = Σ_{n, i, j} x_pad[n, i·s + p·d, j·s + q·d, c] · dy[n, i, j, o]
        a correlation of x with dy (dy as the kernel; stride and dilation swap roles);
    dL/dx = the "full" correlation of dy, stride-dilated (s − 1 zeros between rows and
        columns), with the flipped kernel w[::-1, ::-1] with C_in ↔ C_out swapped (the
        transposed convolution), cropped by the padding; rows/cols of x_pad that no window
        reached, when (n + 2p − k̂) is not divisible by s, get gradient 0;
    dL/db[o] = Σ_{n, i, j} dy[n, i, j, o].
Receptive field of a stack: r_L = r_{L−1} + d_L·(k_L − 1)·j_{L−1}, j_L = j_{L−1}·s_L, r_0 = j_0 = 1;
its support (which input offsets reach one output) is the sum set of the layers' tap offsets,
with holes when rates repeat (gridding); gradient_support measures it on any function.

Every function checks its arguments in Python before any XLA call and raises ValueError
(TypeError for wrong types) naming the function, the argument, what it got and what it
expected. All of them jit (stride/padding/dilation/kernel_size/mode static) and differentiate.
"""
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from segen_jax.ops._common import _array, _geometry, _is_int, _pad, _padding, _pair, _patches


def _check_conv(fn, x, w, b, stride, padding, dilation):
    _array(fn, "x", x, "(N, H, W, C_in)")
    _array(fn, "w", w, "(kh, kw, C_in, C_out)")
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"{fn}: x has C_in = {x.shape[3]} channels but w expects "
                         f"{w.shape[2]} (w.shape[2])")
    if b is not None:
        _array(fn, "b", b, "(C_out,)")
        if b.shape[0] != w.shape[3]:
            raise ValueError(f"{fn}: b must have shape (C_out,) = ({w.shape[3]},), "
                             f"got shape {tuple(b.shape)}")
    return _geometry(fn, x.shape, w.shape[:2], stride, padding, dilation)


# --------------------------------------------------------------------------- the direct method
def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """Cross-correlation as DL layers compute it (what `lax.conv_general_dilated` computes).

    y[n, i, j, o] = Σ_{p, q, c} x_pad[n, i·s + p·d, j·s + q·d, c] · w[p, q, c, o] + b[o]

    x: (N, H, W, C_in), w: (kh, kw, C_in, C_out), b: (C_out,) or None -> (N, H', W', C_out),
    H' = ⌊(H + 2p − d·(kh − 1) − 1) / s⌋ + 1 (⌈H / s⌉ for "SAME"). stride, dilation: int or
    pair (h, w) >= 1; padding: int or pair >= 0 per side, "SAME" (XLA's split) or "VALID".
    Computed directly: pad once, then one einsum per kernel offset (p, q) on a strided slice.
    """
    pads, s, d, out = _check_conv("conv2d", x, w, b, stride, padding, dilation)
    views = _patches(_pad(x, pads), w.shape[:2], s, d, out)
    # w_pq, the kh·kw offsets' (C_in, C_out) kernels, by one split, whose gradient is one
    # concatenation of the offsets' gradients. (Indexing w offset by offset would make the
    # gradient a sum of kh·kw zero-padded copies of w, which XLA:CPU recomputes inside each
    # consumer, Adam's moments included: the VAE's step ran 1.06-1.09x faster this way.)
    w_pq = jnp.split(w.reshape(-1, *w.shape[2:]), w.shape[0] * w.shape[1])
    y = sum(jnp.einsum("nhwc,co->nhwo", v, w_i.reshape(w.shape[2:]))
            for v, w_i in zip(views, w_pq))
    return y if b is None else y + b


def convolve2d(x, f, mode="full"):
    """True 2-D convolution (kernel flipped) of 2-D arrays, as scipy.signal.convolve2d.

    y(i, j) = Σ_p Σ_q x(i − p, j − q) · f(p, q), x outside its support is 0.
    x: (M1, M2), f: (K1, K2) -> per axis, with M, K the sizes of x and f:
      "full"  (M + K − 1): every (i, j) where the two overlap;
      "same"  (M): the window of "full" starting at (K − 1) // 2, centred on x;
      "valid" (|M − K| + 1): where one lies wholly inside the other (then one of x, f must be
              at least as large as the other along both axes; x * f = f * x).
    Computed as the cross-correlation of x, zero-padded, with f[::-1, ::-1]; the dtype is
    the inputs' (integer arrays give exact integer results, where jax.scipy gives floats).
    """
    _array("convolve2d", "x", x, "(H, W)")
    _array("convolve2d", "f", f, "(kh, kw)")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f'convolve2d: mode must be "full", "same" or "valid", got {mode!r}')
    if 0 in x.shape or 0 in f.shape:
        raise ValueError(f"convolve2d: x and f must be non-empty, got shapes {tuple(x.shape)} "
                         f"and {tuple(f.shape)}")
    if mode == "valid" and not (all(m >= k for m, k in zip(x.shape, f.shape))
                                or all(m <= k for m, k in zip(x.shape, f.shape))):
        raise ValueError(f'convolve2d: mode "valid" needs one of x, f at least as large as the '
                         f"other along both axes, got shapes {tuple(x.shape)} and {tuple(f.shape)}")
    pads = []
    for m, k in zip(x.shape, f.shape):
        # The window [a, a + length) of the "full" output; "full" pads x by k − 1 on each side.
        a, length = {"full": (0, m + k - 1), "same": ((k - 1) // 2, m),
                     "valid": (min(m, k) - 1, abs(m - k) + 1)}[mode]
        pads.append((k - 1 - a, a + length - m))
    xp = jnp.pad(x, pads)[None, :, :, None]
    return conv2d(xp, jnp.flip(f, (0, 1))[:, :, None, None])[0, :, :, 0]


# --------------------------------------------------------------------------- im2col
def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """The patches of x as rows: (N, H, W, C_in) -> (N, H', W', kh·kw·C_in).

    cols[n, i, j, (p·kw + q)·C_in + c] = x_pad[n, i·s + p·d, j·s + q·d, c], so that
    im2col(x, (kh, kw), ...) @ w.reshape(kh·kw·C_in, C_out) == conv2d(x, w, ...).
    kernel_size: int or pair (kh, kw) >= 1; the other arguments as in conv2d.
    """
    _array("im2col", "x", x, "(N, H, W, C_in)")
    kernel = _pair("im2col", "kernel_size", kernel_size, 1)
    pads, s, d, out = _geometry("im2col", x.shape, kernel, stride, padding, dilation)
    cols = jnp.stack(_patches(_pad(x, pads), kernel, s, d, out), axis=3)  # (N, H', W', kh·kw, C)
    return cols.reshape(*cols.shape[:3], -1)


def conv2d_im2col(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """conv2d as one matrix product: im2col(x) (N·H'·W', kh·kw·C_in) @ w (kh·kw·C_in, C_out)."""
    _check_conv("conv2d_im2col", x, w, b, stride, padding, dilation)
    cols = im2col(x, w.shape[:2], stride=stride, padding=padding, dilation=dilation)
    y = cols @ w.reshape(-1, w.shape[3])
    return y if b is None else y + b


# --------------------------------------------------------------------------- backward pass
def conv2d_backward(x, w, dy, *, stride=1, padding=0, dilation=1):
    """Gradients (dL/dx, dL/dw) of conv2d given dy = dL/dy, from the hand derivation.

    x: (N, H, W, C_in), w: (kh, kw, C_in, C_out), dy: (N, H', W', C_out) -> (dx like x, dw like w).
    dw[p, q, c, o] = Σ_{n, i, j} x_pad[n, i·s + p·d, j·s + q·d, c] · dy[n, i, j, o]: the
      correlation of x with dy (dy as the kernel, stride d, dilation s), one einsum per (p, q).
    dx_pad[n, a, b, c] = Σ_{i·s + p·d = a, j·s + q·d = b} dy[n, i, j, o] · w[p, q, c, o]
      = Σ_{p', q', o} dy_up_pad[n, a + p'·d, b + q'·d, o] · w[kh−1−p', kw−1−q', c, o]:
      dy_up has s − 1 zeros between rows/cols, padded by d·(k − 1) ("full"), correlated with
      the flipped kernel with C_in ↔ C_out swapped (the transposed convolution); then the
      padding is cropped off. Rows of x_pad past the last window get 0. (dL/db = Σ_{n,i,j} dy.)
    """
    fn = "conv2d_backward"
    pads, s, d, out = _check_conv(fn, x, w, None, stride, padding, dilation)
    _array(fn, "dy", dy, "(N, H', W', C_out)")
    expected = (x.shape[0], *out, w.shape[3])
    if tuple(dy.shape) != expected:
        raise ValueError(f"{fn}: dy must have the shape of conv2d's output (N, H', W', C_out) = "
                         f"{expected}, got shape {tuple(dy.shape)}")
    (kh, kw), (ho, wo) = w.shape[:2], out
    xp = _pad(x, pads)
    # The extent of x_pad that some window reaches: d·(k − 1) + s·(H' − 1) + 1 ≤ H + 2p.
    reach = (d[0] * (kh - 1) + s[0] * (ho - 1) + 1, d[1] * (kw - 1) + s[1] * (wo - 1) + 1)

    # dw: for each kernel offset (p, q), correlate the window view of x_pad with dy.
    views = _patches(xp, (kh, kw), s, d, out)
    dw = jnp.stack([jnp.einsum("nhwc,nhwo->co", v, dy) for v in views]).reshape(w.shape)

    # dx: s − 1 zeros between the rows/cols of dy, d·(k − 1) zeros on each side ("full"), and
    # at the end the rows of x_pad that no window reached, so the correlation has x_pad's size.
    full = [(di * (k - 1), di * (k - 1) + (n + sum(pi) - r), si - 1)   # (low, high, interior)
            for di, k, pi, n, r, si in zip(d, (kh, kw), pads, x.shape[1:3], reach, s)]
    dy_up = lax.pad(dy, jnp.zeros((), dy.dtype), [(0, 0, 0), *full, (0, 0, 0)])
    w_t = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)          # (kh, kw, C_out, C_in), flipped
    dx_pad = conv2d(dy_up, w_t, dilation=d)                  # (N, H + 2p, W + 2p, C_in)
    dx = dx_pad[:, pads[0][0]:pads[0][0] + x.shape[1], pads[1][0]:pads[1][0] + x.shape[2], :]
    return dx, dw


# --------------------------------------------------------------------------- sizes
def conv_output_size(n, k, *, stride=1, padding=0, dilation=1):
    """Output length along one axis: ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1.

    n, k, stride, dilation: ints >= 1; padding: int >= 0 (per side), "VALID" (p = 0) or
    "SAME" (⌈n / s⌉). Scalars only: call once per axis for non-square images or kernels.
    """
    fn = "conv_output_size"
    for name, value, minimum in (("n", n, 1), ("k", k, 1), ("stride", stride, 1),
                                 ("dilation", dilation, 1)):
        if not _is_int(value):
            raise TypeError(f"{fn}: {name} must be an int (one spatial axis), got {value!r}")
        if value < minimum:
            raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    if not isinstance(padding, str) and not _is_int(padding):
        raise TypeError(f'{fn}: padding must be an int >= 0, "SAME" or "VALID" (one spatial '
                        f"axis), got {padding!r}")
    padding = _padding(fn, padding)
    if padding == "SAME":
        return -(-n // stride)
    p = 0 if padding == "VALID" else padding[0]
    k_hat = dilation * (k - 1) + 1
    if k_hat > n + 2 * p:
        raise ValueError(f"{fn}: the dilated kernel dilation·(k − 1) + 1 = {k_hat} is larger "
                         f"than the padded input n + 2·padding = {n + 2 * p}")
    return (n + 2 * p - k_hat) // stride + 1


def effective_kernel_size(k, dilation=1):
    """The extent of a kernel of k taps with dilation r: k̂ = k + (k − 1)(r − 1) (ints >= 1).
    An atrous kernel is the dense kernel of size k̂ with r − 1 zeros inserted between taps."""
    for name, value in (("k", k), ("dilation", dilation)):
        if not _is_int(value):
            raise TypeError(f"effective_kernel_size: {name} must be an int >= 1, got {value!r}")
        if value < 1:
            raise ValueError(f"effective_kernel_size: {name} must be an int >= 1, got {value!r}")
    return int(k + (k - 1) * (dilation - 1))


class ReceptiveField(NamedTuple):
    """size: input pixels one output pixel sees along an axis; jump: input step per output step."""
    size: int
    jump: int


def _layers(fn, layers):
    """[(k, s, d), ...] from receptive_field's layer specs, checked."""
    if isinstance(layers, (str, bytes, Mapping)) or not isinstance(layers, Sequence):
        raise TypeError(f"{fn}: layers must be a sequence of dicts or (kernel, stride, dilation) "
                        f"tuples, got {type(layers).__name__}")
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Mapping):
            unknown = set(layer) - {"kernel", "stride", "dilation", "padding"}
            if "kernel" not in layer or unknown:
                raise ValueError(f'{fn}: layers[{i}] must have the key "kernel" and optionally '
                                 f'"stride", "dilation", "padding", got keys {sorted(layer)}')
            k, s, d = layer["kernel"], layer.get("stride", 1), layer.get("dilation", 1)
        elif isinstance(layer, (tuple, list)):
            if not 1 <= len(layer) <= 3:
                raise ValueError(f"{fn}: layers[{i}] must be (kernel,), (kernel, stride) or "
                                 f"(kernel, stride, dilation), got {layer!r}")
            k, s, d = (*layer, 1, 1)[:3]
        else:
            raise TypeError(f"{fn}: layers[{i}] must be a dict or a tuple, got {layer!r}")
        for name, value in (("kernel", k), ("stride", s), ("dilation", d)):
            if not _is_int(value):
                raise TypeError(f"{fn}: layers[{i}] {name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{fn}: layers[{i}] {name} must be >= 1, got {value!r}")
        out.append((int(k), int(s), int(d)))
    return out


def receptive_field(layers):
    """Receptive field of a stack of conv/pool layers along one axis -> ReceptiveField(size, jump).

    layers: a sequence, first layer first, of dicts {"kernel": k, "stride": s, "dilation": d}
    (stride, dilation default 1; a "padding" key is allowed and ignored: padding shifts the
    field but does not change its size) or tuples (k,), (k, s) or (k, s, d), all ints >= 1.
        r_L = r_{L−1} + d_L·(k_L − 1)·j_{L−1},   j_L = j_{L−1}·s_L,   r_0 = j_0 = 1.
    With dilation the field can have holes (gridding); size is its extent.
    """
    size, jump = 1, 1
    for k, s, d in _layers("receptive_field", layers):
        size, jump = size + d * (k - 1) * jump, jump * s
    return ReceptiveField(int(size), int(jump))


def receptive_field_support(layers):
    """Which input offsets one output of a stack reaches, along one axis -> bool (size,).

    Layer l's taps sit at offsets {0, d_l·j_{l−1}, …, (k_l − 1)·d_l·j_{l−1}} in input pixels
    (j the jump before it), and a path through the stack adds one tap of each layer, so the
    support is the sum set of the layers' tap sets. Stacked 3x3 layers of equal rate r (>= 2)
    leave holes (only multiples of r: gridding); a stack of 3x3 layers with no strides has none
    if its first rate is 1 and each rate is at most 1 + 2·(sum of the earlier rates), e.g.
    1, 2, 3 or 1, 2, 5 (sufficient, not necessary). Ignores weights that happen to be zero, so a trained net's gradient
    support (gradient_support) is at most this set. Layers as in receptive_field.
    """
    offsets, jump = np.zeros(1, int), 1
    for k, s, d in _layers("receptive_field_support", layers):
        taps = np.arange(k) * d * jump
        offsets = np.unique((offsets[:, None] + taps[None, :]).ravel())
        jump *= s
    support = np.zeros(offsets[-1] + 1, bool)
    support[offsets] = True
    return support


def gradient_support(fn, shape, *, at=None, seed=0):
    """The empirical receptive field: |∂ fn(x)[0, i, j, :].sum() / ∂x[0]| > 0 over (H, W).

    fn maps (N, H, W, C) images of `shape` to (N, H', W', C') maps; (i, j) = `at` (default the
    centre of the output) and x is standard normal from `seed` (a random point, so a ReLU is
    almost surely not dead everywhere by accident). -> bool (H, W): the input pixels that
    can change that output pixel, to compare with receptive_field_support.
    """
    if not callable(fn):
        raise TypeError(f"gradient_support: fn must be callable, got {type(fn).__name__}")
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4 and all(
            _is_int(v) and v >= 1 for v in shape)):
        raise ValueError(f"gradient_support: shape must be (N, H, W, C) of ints >= 1, got "
                         f"{shape!r}")
    x = jax.random.normal(jax.random.key(seed), tuple(shape))
    out_shape = jax.eval_shape(fn, x).shape
    if len(out_shape) != 4:
        raise ValueError(f"gradient_support: fn must return (N, H', W', C'), got shape "
                         f"{out_shape}")
    if at is not None and not (isinstance(at, (tuple, list)) and len(at) == 2
                               and all(_is_int(v) for v in at)):
        raise ValueError(f"gradient_support: at must be a pair of ints (row, column) of the "
                         f"output, got {at!r}")
    i, j = at if at is not None else (out_shape[1] // 2, out_shape[2] // 2)
    if not (0 <= i < out_shape[1] and 0 <= j < out_shape[2]):
        raise ValueError(f"gradient_support: at must lie in the output's {out_shape[1:3]}, "
                         f"got {at!r}")
    grad = jax.jit(jax.grad(lambda v: fn(v)[0, i, j, :].sum()))(x)
    return np.asarray(jnp.abs(grad[0]).sum(-1) > 0)

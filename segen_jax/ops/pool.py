"""2-D pooling from scratch: max, average (padding excluded), global average; backward by hand.

x: (N, H, W, C); window (kh, kw); stride s (default: the window, so windows tile the image);
padding p per side (an int, a pair, "SAME" or "VALID", as in conv2d). The windows are the
conv2d windows with dilation 1, so the output size is the convolution's:
    H' = ⌊(H + 2p − kh) / s⌋ + 1        ("SAME": ⌈H / s⌉, "VALID": p = 0).

max_pool2d:   y[n, i, j, c] = max_{0≤p<kh, 0≤q<kw} x_pad[n, i·s + p, j·s + q, c]
              (x_pad: x padded with −∞, so padding never wins)
avg_pool2d:   y[n, i, j, c] = Σ_{(p, q) inside x} x[n, i·s + p − lo, j·s + q − lo, c] / count[i, j]
              count[i, j] = the number of the window's pixels that lie inside x: the padding is
              excluded from the average (PyTorch's count_include_pad=False), so a border window
              is the mean of the pixels it covers, not that mean pulled towards 0.
global_avg_pool: y[n, c] = (1 / HW) Σ_{h, w} x[n, h, w, c]    (N, H, W, C) -> (N, C)

Backward (derived in chapter 2), with dy = ∂L/∂y of y's shape:
    max: y[i, j] depends only on its window's largest element, so ∂y[i, j]/∂x_pad[a, b] = 1 at
         (a, b) = (i·s + p*, j·s + q*), the window's argmax, and 0 elsewhere:
             dx_pad[a, b] = Σ_{windows (i, j) whose argmax is (a, b)} dy[i, j].
         Ties (max is not differentiable there): the first maximum in row-major window order
         (smallest p, then smallest q) takes the whole dy[i, j]: XLA's reduce_window and
         PyTorch do the same. Overlapping windows add up.
    avg: every pixel of the window gets the same share, dx[a, b] = Σ_{windows ∋ (a, b)}
         dy[i, j] / count[i, j].
    Both are then cropped from x_pad back to x.

How it is computed: one strided view x_pad[:, i·s + p, j·s + q, :] per window offset (p, q),
combined elementwise. The running maximum keeps the earlier value on a tie,
    m ← where(v > m, v, m)      (and takes a NaN, so NaNs propagate as in XLA),
so jax.grad of max_pool2d follows the tie rule above by itself (and jvp, hessians work too).
On XLA:CPU its forward+backward is 3.8-7.8x faster than lax.reduce_window's, whose gradient is a
scatter (benchmarks/RESULTS_pool.md), with the same values and gradients (tests/test_pool.py).
"""
import jax.numpy as jnp
import numpy as np

from segen_jax.ops._common import _array, _geometry, _pad, _pair, _patches, _unpatch


def _check_pool(fn, x, window, stride, padding):
    """Checks x (N, H, W, C), window, stride (default window), padding; returns the geometry
    (pads, window (kh, kw), stride (sh, sw), out (H', W')). Each side's padding must be smaller
    than the window, so that every window holds at least one pixel of x."""
    _array(fn, "x", x, "(N, H, W, C)")
    if 0 in x.shape[1:3]:
        raise ValueError(f"{fn}: x must have H, W >= 1, got shape {tuple(x.shape)}")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: x must hold real numbers (complex numbers have no maximum), "
                        f"got dtype {x.dtype}")
    k = _pair(fn, "window", window, 1)
    s = k if stride is None else _pair(fn, "stride", stride, 1)
    pads, _, _, out = _geometry(fn, x.shape, k, s, padding, 1, kernel_name="window")
    for axis, (lo, hi), ki in zip("HW", pads, k):
        if max(lo, hi) >= ki:
            raise ValueError(
                f"{fn}: padding must be smaller than the window on each side, so that every "
                f"window holds a pixel of x; along {axis} got padding ({lo}, {hi}) for window "
                f"{ki} (padding {padding!r})")
    return pads, k, s, out


def _lowest(dtype):
    """The padding value of max pooling: −∞ for floats, the smallest integer for ints."""
    return -jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def _running_max(views):
    """Elementwise max of the views; on a tie the earlier view is kept (first argmax wins).
    A NaN wins too and stays, as in lax.reduce_window: a diverging activation is not hidden."""
    m = views[0]
    floating = jnp.issubdtype(m.dtype, jnp.floating)
    for v in views[1:]:
        m = jnp.where((v > m) | jnp.isnan(v) if floating else v > m, v, m)
    return m


def max_pool2d(x, window, *, stride=None, padding=0):
    """y[n, i, j, c] = max_{p, q} x_pad[n, i·s + p, j·s + q, c] (x_pad padded with −∞).

    x: (N, H, W, C) -> (N, H', W', C), H' = ⌊(H + 2p − kh) / s⌋ + 1. window, stride: int or
    pair >= 1 (stride defaults to window); padding: int or pair >= 0 (smaller than the window),
    "SAME" or "VALID". The gradient goes to each window's first maximum (module docstring).
    """
    pads, k, s, out = _check_pool("max_pool2d", x, window, stride, padding)
    return _running_max(_patches(_pad(x, pads, _lowest(x.dtype)), k, s, (1, 1), out))


def _counts(n, k, s, lo, out):
    """count along one axis: how many of window i's rows i·s − lo + p (0 ≤ p < k) lie in [0, n)."""
    start = np.arange(out) * s - lo
    return np.minimum(start + k, n) - np.maximum(start, 0)


def _window_counts(x_shape, pads, k, s, out):
    """count[i, j] (H', W', 1): the pixels of x in window (i, j); separable, known at trace time."""
    rows = _counts(x_shape[1], k[0], s[0], pads[0][0], out[0])
    cols = _counts(x_shape[2], k[1], s[1], pads[1][0], out[1])
    return (rows[:, None] * cols[None, :])[:, :, None].astype(np.float32)


def _divisor(counts, dtype):
    """counts as an array, or as one number when every window is whole (cheaper to divide by)."""
    return float(counts.flat[0]) if np.all(counts == counts.flat[0]) else counts.astype(dtype)


def avg_pool2d(x, window, *, stride=None, padding=0):
    """y[n, i, j, c] = Σ_{(p, q) inside x} x[n, i·s + p − lo, j·s + q − lo, c] / count[i, j].

    The padding is excluded from the average: count[i, j] is the number of x's pixels in the
    window. Shapes and arguments as max_pool2d; integer x gives a float32 mean.
    """
    pads, k, s, out = _check_pool("avg_pool2d", x, window, stride, padding)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    total = sum(_patches(_pad(x, pads), k, s, (1, 1), out))
    return total / _divisor(_window_counts(x.shape, pads, k, s, out), x.dtype)


def global_avg_pool(x, *, keepdims=False):
    """y[n, c] = (1 / HW) Σ_{h, w} x[n, h, w, c]: (N, H, W, C) -> (N, C), or (N, 1, 1, C)
    with keepdims. Any H, W: what makes a network that ends with it input-size agnostic."""
    _array("global_avg_pool", "x", x, "(N, H, W, C)")
    if 0 in x.shape[1:3]:
        raise ValueError(f"global_avg_pool: x must have H, W >= 1, got shape {tuple(x.shape)}")
    return jnp.mean(x, axis=(1, 2), keepdims=keepdims)


def _check_dy(fn, dy, x, out):
    _array(fn, "dy", dy, "(N, H', W', C)")
    expected = (x.shape[0], *out, x.shape[3])
    if tuple(dy.shape) != expected:
        raise ValueError(f"{fn}: dy must have the shape of the pooled output (N, H', W', C) = "
                         f"{expected}, got shape {tuple(dy.shape)}")


def _crop(dx_pad, pads, x_shape):
    (lo_h, _), (lo_w, _) = pads
    return dx_pad[:, lo_h:lo_h + x_shape[1], lo_w:lo_w + x_shape[2], :]


def max_pool2d_backward(x, dy, window, *, stride=None, padding=0):
    """dL/dx of max_pool2d given dy = dL/dy (N, H', W', C) -> (N, H, W, C), by hand:

    dx_pad[a, b] = Σ_{windows (i, j) whose first argmax is (a, b)} dy[i, j], cropped to x.
    For each offset (p, q): mask = "x_pad[i·s + p, j·s + q] is the window's first maximum"
    (equal to the max and no earlier offset was), then dy·mask goes back to the places the
    view came from.
    """
    fn = "max_pool2d_backward"
    pads, k, s, out = _check_pool(fn, x, window, stride, padding)
    _check_dy(fn, dy, x, out)
    xp = _pad(x, pads, _lowest(x.dtype))
    views = _patches(xp, k, s, (1, 1), out)
    y = _running_max(views)
    taken = jnp.zeros(y.shape, bool)
    parts = []
    for v in views:
        first = (v == y) & ~taken
        taken = taken | first
        parts.append(jnp.where(first, dy, jnp.zeros((), dy.dtype)))
    return _crop(_unpatch(parts, xp.shape, k, s, (1, 1)), pads, x.shape)


def avg_pool2d_backward(x, dy, window, *, stride=None, padding=0):
    """dL/dx of avg_pool2d given dy = dL/dy (N, H', W', C) -> (N, H, W, C), by hand:

    dx[a, b] = Σ_{windows (i, j) ∋ (a, b)} dy[i, j] / count[i, j]: each window hands every pixel
    it covers the same share. x is used only for its shape (the average is linear in x).
    """
    fn = "avg_pool2d_backward"
    pads, k, s, out = _check_pool(fn, x, window, stride, padding)
    _check_dy(fn, dy, x, out)
    share = dy / _divisor(_window_counts(x.shape, pads, k, s, out), dy.dtype)
    padded = (x.shape[0], x.shape[1] + sum(pads[0]), x.shape[2] + sum(pads[1]), x.shape[3])
    return _crop(_unpatch([share] * (k[0] * k[1]), padded, k, s, (1, 1)), pads, x.shape)

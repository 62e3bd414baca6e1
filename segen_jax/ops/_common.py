"""What conv.py and pool.py share: argument checks and the strided window views of an image.

Every check raises ValueError (TypeError for wrong types) naming the calling function, the
argument, what it got and what it expected, before any XLA call.
"""
import jax.numpy as jnp
import numpy as np
from jax import lax

_PAD_HELP = 'an int >= 0, a pair (h, w) of ints >= 0, "SAME" or "VALID"'


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _pair(fn, name, value, minimum):
    """An int or a pair of ints, each >= minimum → (h, w)."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{fn}: {name} must be an int or a pair (h, w), got {value!r} "
                             f"of length {len(value)}")
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{fn}: {name} must be an int or a pair (h, w) of ints, got {value!r}")
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{fn}: {name} must be an int or a pair (h, w) of ints, "
                        f"got {value!r} of type {type(value).__name__}")
    if min(pair) < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return pair


def _padding(fn, padding):
    """"SAME" | "VALID" (any case) | (p_h, p_w) with p >= 0."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"{fn}: padding must be {_PAD_HELP}, got {padding!r}")
        return padding.upper()
    if not (_is_int(padding) or isinstance(padding, (tuple, list))):
        raise TypeError(f"{fn}: padding must be {_PAD_HELP}, got {padding!r} "
                        f"of type {type(padding).__name__}")
    return _pair(fn, "padding", padding, 0)


def _array(fn, name, value, layout):
    """value must be a numeric array whose rank is the number of names in layout."""
    ndim = len([part for part in layout.strip("()").split(",") if part.strip()])
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{fn}: {name} must be an array of shape {layout}, "
                        f"got {type(value).__name__}")
    if not jnp.issubdtype(value.dtype, jnp.number):
        raise TypeError(f"{fn}: {name} must hold numbers (e.g. float32), got dtype {value.dtype}")
    if len(value.shape) != ndim:
        raise ValueError(f"{fn}: {name} must have shape {layout} = {ndim} dim"
                         f"{'s' * (ndim != 1)}, got shape {tuple(value.shape)}")


def _same_pads(n, k, s, d):
    """XLA's SAME: output ⌈n/s⌉; total pad max((o−1)s + d(k−1) + 1 − n, 0), low = total // 2."""
    total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def _geometry(fn, x_shape, kernel, stride, padding, dilation, kernel_name="kernel"):
    """Checks stride/padding/dilation against x's and the kernel's sizes.

    Returns (pads ((lo_h, hi_h), (lo_w, hi_w)), stride (h, w), dilation (h, w), out (H', W')).
    """
    s = _pair(fn, "stride", stride, 1)
    d = _pair(fn, "dilation", dilation, 1)
    padding = _padding(fn, padding)
    pads, out = [], []
    for axis, n, k, si, di, pi in zip("HW", x_shape[1:3], kernel, s, d,
                                      (padding, padding) if isinstance(padding, str) else padding):
        lo, hi = (_same_pads(n, k, si, di) if pi == "SAME" else (0, 0) if pi == "VALID"
                  else (pi, pi))
        k_hat = di * (k - 1) + 1
        if k_hat > n + lo + hi:
            size = (f"the dilated kernel along {axis}, dilation·(k − 1) + 1 = {di}·({k} − 1) + 1"
                    f" = {k_hat}," if kernel_name == "kernel" else
                    f"the {kernel_name} along {axis}, {k},")
            raise ValueError(
                f"{fn}: {size} is larger than the padded input {axis} + padding = {n} + "
                f"{lo + hi} = {n + lo + hi} (x shape {tuple(x_shape)}, {kernel_name} "
                f"{tuple(kernel)}, padding {padding!r}"
                + (f", dilation {dilation!r})" if kernel_name == "kernel" else ")"))
        pads.append((lo, hi))
        out.append((n + lo + hi - k_hat) // si + 1)
    return tuple(pads), s, d, tuple(out)


# --------------------------------------------------------------------------- window views
def _pad(x, pads, value=0):
    """x (N, H, W, C) padded along H and W by pads ((lo_h, hi_h), (lo_w, hi_w)) with value."""
    return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def _patches(xp, kernel, s, d, out):
    """The kh·kw strided views x_pad[:, i·s + p·d, j·s + q·d, :] (N, H', W', C), (p, q) row-major.

    Each view: the window of (H' − 1)·s + 1 rows starting at row p·d, then every s-th row (and
    the same along W). The offset is an operand of dynamic_slice, not part of the op, so eager
    calls compile one slice per shape instead of one per offset; under jit it folds away.
    """
    n, _, _, c = xp.shape
    size = (n, (out[0] - 1) * s[0] + 1, (out[1] - 1) * s[1] + 1, c)
    return [lax.dynamic_slice(xp, (0, p * d[0], q * d[1], 0), size)[:, ::s[0], ::s[1], :]
            for p in range(kernel[0]) for q in range(kernel[1])]


def _unpatch(parts, padded_shape, kernel, s, d):
    """The adjoint of _patches: Σ over (p, q) of parts[p·kw + q] put back at its view's places.

    parts: kh·kw arrays (N, H', W', C) -> (N, H_pad, W_pad, C) with
    out[n, i·s + p·d, j·s + q·d, c] += parts[p·kw + q][n, i, j, c]: each part with s − 1 zeros
    between its rows/cols (lax.pad's interior padding), shifted to start at row p·d.
    """
    (hp, wp), zero = padded_shape[1:3], jnp.zeros((), parts[0].dtype)
    total = 0
    for t, part in enumerate(parts):
        p, q = divmod(t, kernel[1])
        rows, cols = part.shape[1:3]
        total = total + lax.pad(part, zero, [
            (0, 0, 0), (p * d[0], hp - p * d[0] - (rows - 1) * s[0] - 1, s[0] - 1),
            (q * d[1], wp - q * d[1] - (cols - 1) * s[1] - 1, s[1] - 1), (0, 0, 0)])
    return total

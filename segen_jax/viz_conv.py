"""Convolution-arithmetic figures in the style of Dumoulin & Visin (2016), for chapter 1.

The input (blue, with the zero padding drawn as empty cells), the kernel's footprint at one
output position (dark cells: the taps, spaced by the dilation) and the output (green, the
position computed highlighted), for a square input of side i, kernel k, stride s, padding p
and dilation d: o = ⌊(i + 2p − d(k − 1) − 1)/s⌋ + 1.
"""
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from segen_jax.viz import style

_INPUT, _PAD, _TAP, _OUTPUT, _HIT = "#9ecae1", "#ffffff", "#08519c", "#a1d99b", "#238b45"


def output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """o = ⌊(i + 2p − d(k − 1) − 1)/s⌋ + 1 (the figure's own copy of the formula)."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def conv_arithmetic(i: int, k: int, *, stride: int = 1, padding: int = 0, dilation: int = 1,
                    position=(0, 0), ax=None, title=None):
    """Draw input, kernel footprint at output `position` (row, col), and output. Returns the Figure."""
    for name, value, low in (("i", i, 1), ("k", k, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"conv_arithmetic: {name} must be an int >= {low}, got {value!r}")
    o = output_size(i, k, stride, padding, dilation)
    if o < 1:
        raise ValueError(f"conv_arithmetic: the dilated kernel ({dilation * (k - 1) + 1}) is "
                         f"larger than the padded input ({i + 2 * padding})")
    r, c = position
    if not (0 <= r < o and 0 <= c < o):
        raise ValueError(f"conv_arithmetic: position must lie in the {o}x{o} output, got {position}")
    n = i + 2 * padding
    with style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(0.28 * (n + o + 2) + 0.4, 0.28 * n + 0.7))
        for y in range(n):
            for x in range(n):
                inside = padding <= y < padding + i and padding <= x < padding + i
                ax.add_patch(Rectangle((x, n - 1 - y), 1, 1, facecolor=_INPUT if inside else _PAD,
                                       edgecolor="0.35", lw=0.6, ls="-" if inside else ":"))
        for p in range(k):
            for q in range(k):
                y, x = r * stride + p * dilation, c * stride + q * dilation
                ax.add_patch(Rectangle((x + 0.15, n - 1 - y + 0.15), 0.7, 0.7, facecolor=_TAP,
                                       alpha=0.85, lw=0))
        left = n + 1.5
        bottom = (n - o) / 2
        for y in range(o):
            for x in range(o):
                hit = (y, x) == (r, c)
                ax.add_patch(Rectangle((left + x, bottom + o - 1 - y), 1, 1, edgecolor="0.35",
                                       facecolor=_HIT if hit else _OUTPUT, lw=0.6))
        ax.annotate("", xy=(left - 0.2, n / 2), xytext=(n + 0.2, n / 2),
                    arrowprops=dict(arrowstyle="->", color="0.3"))
        ax.set_xlim(-0.2, left + o + 0.2)
        ax.set_ylim(-0.2, n + 0.2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_xlabel(f"input {i}x{i} (pad {padding})  →  output {o}x{o}", fontsize=8)
        ax.set_title(title or f"k={k}, s={stride}, p={padding}, d={dilation}", fontsize=9)
    return ax.figure

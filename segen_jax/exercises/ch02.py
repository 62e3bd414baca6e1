"""Checkers for chapter 2 (notebooks/02_pooling.ipynb)."""
import numpy as np

from segen_jax.exercises._common import _call, _verdict


def _windows(x, k):
    """(H//k, W//k, k·k): the non-overlapping k x k windows of a 2-D x, row-major inside."""
    h, w = x.shape[0] // k, x.shape[1] // k
    x = np.asarray(x)[:h * k, :w * k]
    return x.reshape(h, k, w, k).transpose(0, 2, 1, 3).reshape(h, w, k * k)


# ---- Chapter 2, exercise 1: max pooling by window offsets -----------------------------------

def check_max_pool(fn) -> bool:
    """Exercise 2.1: fn(x, k) = k x k max pooling with stride k of a 2-D x (H, W), no padding:
    y[i, j] = max_{0≤p,q<k} x[i·k + p, j·k + q], shape (H // k, W // k)."""
    rng = np.random.default_rng(0)
    for shape, k in (((6, 6), 2), ((7, 9), 2), ((9, 8), 3), ((5, 5), 5), ((4, 6), 1)):
        x = rng.standard_normal(shape).astype(np.float32)
        out, problem = _call(fn, x, k)
        if problem:
            return _verdict(False, problem + " For each offset (p, q) take the view "
                                             "x[p::k, q::k] cropped to (H // k, W // k), and "
                                             "combine the k·k views with np.maximum.")
        out = np.asarray(out)
        want = _windows(x, k).max(-1)
        if out.shape != want.shape:
            if out.shape == (shape[0] - k + 1, shape[1] - k + 1):
                return _verdict(False, f"for x {shape} and k={k} you return {out.shape}: that "
                                       "is stride 1. The windows do not overlap: the next "
                                       "window starts k pixels further.")
            if out.shape == (-(-shape[0] // k), -(-shape[1] // k)):
                return _verdict(False, f"for x {shape} and k={k} you return {out.shape}: rows "
                                       "or columns that do not fill a whole window are dropped "
                                       f"(⌊H / k⌋), so the answer is {want.shape}.")
            return _verdict(False, f"for x {shape} and k={k} the output has shape "
                                   f"(H // k, W // k) = {want.shape}, got {out.shape}.")
        if np.allclose(out, _windows(x, k).mean(-1), atol=1e-5) and k > 1:
            return _verdict(False, "that is average pooling: take the maximum of each window.")
        if np.allclose(out, _windows(x, k).min(-1), atol=1e-5) and k > 1:
            return _verdict(False, "that is the minimum of each window: take the maximum.")
        if not np.allclose(out, want, atol=1e-6):
            return _verdict(False, f"wrong values for x {shape}, k={k}: y[i, j] must be the max "
                                   "of x[i·k:(i+1)·k, j·k:(j+1)·k].")
    return _verdict(True, "max pooling matches on 5 shapes, including ones not divisible by k.")


# ---- Chapter 2, exercise 2: the max-pooling gradient, ties included -------------------------

def _route(x, dy, k, pick):
    """dx for non-overlapping k x k windows: dy[i, j] to the window element(s) chosen by pick."""
    dx = np.zeros(x.shape, np.float64)
    windows = _windows(x, k)
    for i in range(windows.shape[0]):
        for j in range(windows.shape[1]):
            for t, share in pick(windows[i, j]):
                dx[i * k + t // k, j * k + t % k] += share * dy[i, j]
    return dx


def check_max_pool_backward(fn) -> bool:
    """Exercise 2.2: fn(x, dy, k) = dL/dx for k x k max pooling with stride k of a 2-D x:
    each dy[i, j] goes to the first maximum of window (i, j) in row-major order, 0 elsewhere."""
    rng = np.random.default_rng(1)
    first = lambda w: [(int(np.argmax(w)), 1.0)]
    for shape, k in (((4, 4), 2), ((6, 7), 3), ((6, 6), 2)):
        x = rng.integers(-1, 2, shape).astype(np.float32)      # few values: many ties
        dy = rng.standard_normal((shape[0] // k, shape[1] // k)).astype(np.float32)
        out, problem = _call(fn, x, dy, k)
        if problem:
            return _verdict(False, problem + " For each window find the position of its "
                                             "maximum (np.argmax gives the first) and add dy[i, j] "
                                             "there; every other pixel gets 0.")
        out = np.asarray(out)
        if out.shape != x.shape:
            return _verdict(False, f"dx has the shape of x, {x.shape}, got {out.shape}.")
        want = _route(x, dy, k, first)
        if np.allclose(out, want, atol=1e-5):
            continue
        ties = lambda w: [(int(t), 1.0 / np.sum(w == w.max())) for t in np.flatnonzero(w == w.max())]
        everyone = lambda w: [(int(t), 1.0) for t in np.flatnonzero(w == w.max())]
        last = lambda w: [(int(np.flatnonzero(w == w.max())[-1]), 1.0)]
        spread = lambda w: [(t, 1.0 / w.size) for t in range(w.size)]
        for pick, hint in ((ties, "you split dy[i, j] evenly among tied maxima (that is what "
                                  "jax.grad of jnp.max does). The convention here, as in XLA and "
                                  "PyTorch: the first maximum in row-major order gets all of it."),
                           (everyone, "every tied maximum got the whole dy[i, j], so the "
                                      "gradient is counted twice: only the first maximum gets it."),
                           (last, "the last of the tied maxima got dy[i, j]: give it to the "
                                  "first one in row-major order (np.argmax returns the first)."),
                           (spread, "that is the gradient of average pooling (dy / k² to every "
                                    "pixel); max pooling sends dy only to the window's argmax.")):
            if np.allclose(out, _route(x, dy, k, pick), atol=1e-5):
                return _verdict(False, hint)
        return _verdict(False, f"wrong values for x {shape}, k={k}: dx[a, b] = dy[i, j] if (a, b) "
                               "is the first maximum of window (i, j), else 0 (pixels in no "
                               "window get 0).")
    return _verdict(True, "gradients routed to the first maximum of each window, ties included.")


# ---- Chapter 2, exercise 3: how many pixels each window averages ----------------------------

def check_avg_pool_counts(fn) -> bool:
    """Exercise 2.3: fn(n, k, stride, padding) = count[i] for i = 0..n_out − 1: how many of the
    pixels i·s − p + t (0 ≤ t < k) of window i lie inside [0, n). The divisor of avg_pool2d."""
    cases = [(5, 3, 1, 1), (6, 2, 2, 0), (7, 3, 2, 1), (28, 3, 2, 1), (4, 4, 1, 3), (9, 4, 3, 2)]
    for n, k, s, p in cases:
        out, problem = _call(fn, n, k, s, p)
        if problem:
            return _verdict(False, problem + " Window i covers i·s − p .. i·s − p + k − 1; "
                                             "clip both ends to [0, n − 1] and count.")
        starts = np.arange((n + 2 * p - k) // s + 1) * s - p
        want = np.minimum(starts + k, n) - np.maximum(starts, 0)
        out = np.asarray(out).reshape(-1) if np.ndim(out) else np.asarray([out])
        if out.shape != want.shape:
            return _verdict(False, f"for n={n}, k={k}, s={s}, p={p} there are "
                                   f"⌊(n + 2p − k)/s⌋ + 1 = {len(want)} windows, got "
                                   f"{out.size} counts.")
        if np.array_equal(out, np.full(want.shape, k)) and not np.array_equal(want, out):
            return _verdict(False, f"every count is k={k}: that counts the padding. Windows at "
                                   "the border reach into the padding and hold fewer pixels of x.")
        if np.array_equal(out, np.full(want.shape, k * k)):
            return _verdict(False, "count along one axis only: k pixels at most, not k².")
        if not np.array_equal(out, want):
            return _verdict(False, f"for n={n}, k={k}, s={s}, p={p} expected {want.astype(int)}, "
                                   f"got {out}.")
    return _verdict(True, "window counts match avg_pool2d's divisor on 6 geometries.")

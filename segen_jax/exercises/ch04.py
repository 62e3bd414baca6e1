"""Checkers for chapter 4 (notebooks/04_deeplab.ipynb)."""
import jax
import jax.numpy as jnp
import numpy as np

from segen_jax.exercises._common import _call, _verdict


# ---- Chapter 4, exercise 1: the atrous kernel as a dense kernel with holes -------------------

def check_dilate_kernel(fn) -> bool:
    """Exercise 4.1: fn(w, r) = the (k̂, k̂) kernel, k̂ = k + (k − 1)(r − 1), with w's taps at
    rows and columns 0, r, 2r, … and zeros between, so that a plain correlation with it is the
    correlation with w at dilation r."""
    from segen_jax.ops import conv2d

    rng = np.random.default_rng(4)
    for k, r in ((3, 2), (3, 1), (2, 3), (3, 4)):
        w = rng.standard_normal((k, k)).astype(np.float32)
        out, problem = _call(fn, w, r)
        if problem:
            return _verdict(False, problem + " Make a zero array of side k + (k − 1)(r − 1) and "
                                             "put w[p, q] at (p·r, q·r).")
        out = np.asarray(out)
        size = k + (k - 1) * (r - 1)
        if out.shape == (k * r, k * r) and size != k * r:
            return _verdict(False, f"shape {out.shape} is k·r on each side; the kernel ends at "
                                   f"its last tap: k + (k − 1)(r − 1) = {size} for k={k}, r={r}.")
        if out.shape != (size, size):
            return _verdict(False, f"for k={k}, r={r} the kernel is {size}x{size}, got "
                                   f"{out.shape}.")
        x = jnp.asarray(rng.standard_normal((1, size + 4, size + 3, 1)), jnp.float32)
        want = conv2d(x, jnp.asarray(w)[:, :, None, None], dilation=r)
        got = conv2d(x, jnp.asarray(out, jnp.float32)[:, :, None, None])
        if not np.allclose(got, want, atol=1e-4):
            return _verdict(False, f"the taps are misplaced for k={k}, r={r}: w[p, q] belongs "
                                   "at (p·r, q·r), with r − 1 zeros between neighbours.")
    return _verdict(True, "a plain correlation with your kernel equals the atrous one for 4 "
                          "(k, r) pairs.")


# ---- Chapter 4, exercise 2: which offsets a stack of atrous layers reaches -------------------

def check_atrous_support(fn) -> bool:
    """Exercise 4.2: fn(rates) = bool array over offsets 0 … 2·Σr: True where a stack of 3x3,
    stride-1 convolutions with these dilations connects the output to that input offset."""
    from segen_jax.ops import receptive_field_support

    cases = [(2, 2, 2), (1, 2, 3), (1, 2, 5), (2, 4), (3,), (1, 1, 1, 1)]
    for rates in cases:
        out, problem = _call(fn, rates)
        if problem:
            return _verdict(False, problem + " Start from {0}; each layer of rate r adds 0, r or "
                                             "2r to every offset reached so far.")
        want = receptive_field_support([(3, 1, r) for r in rates])
        out = np.asarray(out)
        if out.shape != want.shape:
            return _verdict(False, f"for rates {rates} the field spans 1 + 2·Σr = {len(want)} "
                                   f"offsets, got an array of shape {out.shape}.")
        if out.astype(bool).all() and not want.all():
            return _verdict(False, f"all {len(want)} offsets are marked for rates {rates}, but "
                                   "a stack of equal even rates only reaches multiples of the "
                                   "rate: add tap offsets (a sum set), don't just take the extent.")
        if not np.array_equal(out.astype(bool), want):
            return _verdict(False, f"wrong offsets for rates {rates}: expected "
                                   f"{np.flatnonzero(want).tolist()}.")
    return _verdict(True, f"the support is right for {len(cases)} stacks, holes included.")


# ---- Chapter 4, exercise 3: one mean-field update of the dense CRF ---------------------------

def check_mean_field_step(fn) -> bool:
    """Exercise 4.3: fn(unary (n, K), kernel (n, n), q (n, K)) = the updated Q,
    Q_i(l) ∝ exp(−ψ_i(l) + Σ_j k_ij Q_j(l)), each row normalised."""
    rng = np.random.default_rng(5)
    n, k = 12, 3
    unary = jnp.asarray(rng.uniform(0, 3, (n, k)), jnp.float32)
    a = rng.standard_normal((n, 4))
    kernel = jnp.asarray(np.exp(-((a[:, None] - a[None]) ** 2).sum(-1)), jnp.float32)
    q = jax.nn.softmax(jnp.asarray(rng.standard_normal((n, k)), jnp.float32), -1)
    out, problem = _call(fn, unary, kernel, q)
    if problem:
        return _verdict(False, problem + " Compute −unary + kernel @ q and take a softmax over "
                                         "the labels (axis −1).")
    out = np.asarray(out)
    want = np.asarray(jax.nn.softmax(-unary + kernel @ q, -1))
    if out.shape != want.shape:
        return _verdict(False, f"Q has one row of {k} label probabilities per pixel: shape "
                               f"{want.shape}, got {out.shape}.")
    if not np.allclose(out.sum(-1), 1, atol=1e-4):
        return _verdict(False, "the rows do not sum to 1: normalise over the labels (softmax "
                               "over axis −1), not over the pixels.")
    if np.allclose(out, jax.nn.softmax(-unary - kernel @ q, -1), atol=1e-5):
        return _verdict(False, "the message has the wrong sign: under the Potts model a label "
                               "that nearby, similar pixels hold gets cheaper, so it is "
                               "−ψ + Σ_j k_ij Q_j(l).")
    if np.allclose(out, jax.nn.softmax(-unary, -1), atol=1e-5):
        return _verdict(False, "that is Q⁰ = softmax(−ψ): the pairwise message Σ_j k_ij Q_j(l) "
                               "is missing.")
    if not np.allclose(out, want, atol=1e-5):
        return _verdict(False, "not the mean-field update: Q_i(l) ∝ exp(−ψ_i(l) + "
                               "Σ_j k_ij Q_j(l)).")
    return _verdict(True, "your update equals the library's mean-field step.")

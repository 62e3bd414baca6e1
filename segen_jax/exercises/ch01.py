"""Checkers for chapter 1 (notebooks/01_convolution.ipynb)."""
import jax
import jax.numpy as jnp
import numpy as np

from segen_jax.exercises._common import _call, _verdict


# ---- Chapter 1, exercise 1: the output size of a convolution ---------------------------------

def check_output_size(fn) -> bool:
    """Exercise 1.1: fn(n, k, stride, padding, dilation) = ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1."""
    def right(n, k, s, p, d):
        return (n + 2 * p - d * (k - 1) - 1) // s + 1

    cases = [(n, k, s, p, d) for n in (5, 7, 28, 32) for k in (1, 2, 3, 5) for s in (1, 2, 3)
             for p in (0, 1, 2) for d in (1, 2) if right(n, k, s, p, d) >= 1]
    mistakes = [
        (lambda n, k, s, p, d: (n + 2 * p - k) // s + 1,
         "dilation d spreads the kernel's taps apart: the kernel spans d(k − 1) + 1 pixels."),
        (lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1,
         "padding adds p pixels on *both* sides: the padded input has n + 2p pixels."),
        (lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s,
         "count the first window position too: … + 1."),
        (lambda n, k, s, p, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1,
         "a window must fit entirely: round the number of strides down (floor, //), not up."),
    ]
    for n, k, s, p, d in cases:
        got, problem = _call(fn, n, k, s, p, d)
        if problem:
            return _verdict(False, problem + " The window's first pixel moves by s; count how "
                                             "many starts leave room for the whole kernel.")
        if got != right(n, k, s, p, d):
            for wrong, hint in mistakes:
                if all(_call(fn, *c)[0] == wrong(*c) for c in cases[:40]):
                    return _verdict(False, hint)
            return _verdict(False, f"for n={n}, k={k}, stride={s}, padding={p}, dilation={d} "
                                   f"the output has {right(n, k, s, p, d)} pixels, you gave "
                                   f"{got}. Start from the dilated kernel size d(k − 1) + 1.")
    return _verdict(True, f"the output size formula holds on all {len(cases)} cases.")


# ---- Chapter 1, exercise 2: im2col by hand ---------------------------------------------------

def check_im2col(fn) -> bool:
    """Exercise 1.2: fn(x, k) for x (H, W, C) -> patches (H−k+1, W−k+1, k·k·C), stride 1, no
    padding, each patch flattened in (p, q, c) order: patches[i, j] = x[i:i+k, j:j+k, :].ravel()."""
    from segen_jax.ops import im2col

    x = jax.random.normal(jax.random.key(2), (6, 7, 2))
    k = 3
    want = np.asarray(im2col(x[None], (k, k))[0])
    got, problem = _call(fn, x, k)
    if problem:
        return _verdict(False, problem + " Loop over the k·k offsets (p, q) and slice "
                                         "x[p:p+H−k+1, q:q+W−k+1, :] for each.")
    got = np.asarray(got)
    if got.shape != want.shape:
        return _verdict(False, f"for x of shape {x.shape} and k={k} expected patches of shape "
                               f"{want.shape} (H−k+1, W−k+1, k·k·C), got {got.shape}.")
    channel_first = np.asarray(want).reshape(4, 5, k, k, 2).transpose(0, 1, 4, 2, 3).reshape(4, 5, -1)
    if np.allclose(got, channel_first, atol=1e-6):
        return _verdict(False, "right numbers, wrong order: flatten each patch as (p, q, c) "
                               "(kernel row, kernel column, channel), the order of "
                               "w.reshape(k·k·C, C_out) for an HWIO kernel.")
    if not np.allclose(got, want, atol=1e-6):
        return _verdict(False, "the patch at output (i, j) must hold x[i:i+k, j:j+k, :], "
                               "flattened (p, q, c).")
    return _verdict(True, "your patches times w.reshape(k·k·C, C_out) give conv2d.")


# ---- Chapter 1, exercise 3: the weight gradient by hand --------------------------------------

def check_conv_weight_grad(fn) -> bool:
    """Exercise 1.3: y[i, j] = Σ_{p,q} x[i+p, j+q] w[p, q] (2-D, 'valid'); given x (H, W) and
    dL/dy (H−k+1, W−k+1), fn(x, dy) returns dL/dw (k, k) = Σ_{i,j} x[i+p, j+q] dy[i, j]."""
    kx, kd = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (8, 9))
    k = 3
    dy = jax.random.normal(kd, (8 - k + 1, 9 - k + 1))

    def forward(w):
        return sum(x[p:p + 6, q:q + 7] * w[p, q] for p in range(k) for q in range(k))

    want = np.asarray(jax.vjp(forward, jnp.zeros((k, k)))[1](dy)[0])
    got, problem = _call(fn, x, dy)
    if problem:
        return _verdict(False, problem + " dL/dw[p, q] = Σ_{i,j} dL/dy[i, j] · ∂y[i, j]/∂w[p, q]"
                                         " and ∂y[i, j]/∂w[p, q] = x[i+p, j+q].")
    got = np.asarray(got)
    if got.shape != (k, k):
        return _verdict(False, f"dL/dw has the shape of w: ({k}, {k}), with k = H − H_out + 1; "
                               f"got {got.shape}.")
    if np.allclose(got, want[::-1, ::-1], atol=1e-4):
        return _verdict(False, "flipped: the forward pass is a correlation (no flip), so "
                               "dL/dw[p, q] = Σ x[i+p, j+q] dy[i, j], a correlation of x with dy.")
    if not np.allclose(got, want, atol=1e-4):
        return _verdict(False, "wrong values: each weight w[p, q] multiplies x[i+p, j+q] in every "
                               "output y[i, j]; sum x[i+p, j+q] · dy[i, j] over all (i, j).")
    return _verdict(True, "dL/dw matches jax.vjp of the forward pass.")

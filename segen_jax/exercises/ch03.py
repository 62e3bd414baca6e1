"""Checkers for chapter 3 (notebooks/03_fcn.ipynb)."""
import jax
import jax.numpy as jnp
import numpy as np

from segen_jax.exercises._common import _call, _verdict


# ---- Chapter 3, exercise 1: a convolution as a matrix ---------------------------------------

def check_conv_matrix(fn) -> bool:
    """Exercise 3.1: fn(w, n) = the matrix C ((n − k + 1)², n²) of the valid correlation of an
    n x n image with the k x k kernel w (stride 1), in row-major pixel order: vec(y) = C vec(x)."""
    from segen_jax.ops import conv2d

    rng = np.random.default_rng(3)
    for n, k in ((4, 3), (5, 2), (6, 3)):
        w = rng.standard_normal((k, k)).astype(np.float32)
        out, problem = _call(fn, w, n)
        if problem:
            return _verdict(False, problem + " Row (i, j) of C holds w[p, q] in column "
                                             "(i + p)·n + (j + q), for every p, q.")
        out = np.asarray(out)
        conv = lambda v: conv2d(v.reshape(1, n, n, 1), jnp.asarray(w)[:, :, None, None]).ravel()
        want = np.asarray(jax.jacobian(conv)(jnp.zeros(n * n)))
        m = n - k + 1
        if out.shape == want.T.shape and out.shape != want.shape:
            return _verdict(False, f"shape {out.shape} is Cᵀ's: C maps the {n * n} input pixels "
                                   f"to the {m * m} outputs, so it has {m * m} rows.")
        if out.shape != want.shape:
            return _verdict(False, f"for n={n}, k={k} C has shape ({m * m}, {n * n}), got "
                                   f"{out.shape}.")
        flipped = np.asarray(jax.jacobian(lambda v: conv2d(
            v.reshape(1, n, n, 1), jnp.asarray(w[::-1, ::-1])[:, :, None, None]).ravel())(
            jnp.zeros(n * n)))
        if np.allclose(out, flipped, atol=1e-5) and not np.allclose(want, flipped, atol=1e-5):
            return _verdict(False, "that is the true convolution (kernel flipped); layers "
                                   "compute the correlation y[i, j] = Σ w[p, q]·x[i + p, j + q].")
        if not np.allclose(out, want, atol=1e-5):
            return _verdict(False, f"wrong entries for n={n}, k={k}: row i·{m} + j must hold "
                                   f"w[p, q] at column (i + p)·{n} + (j + q), zeros elsewhere.")
    return _verdict(True, "C matches the Jacobian of conv2d for 3 sizes.")


# ---- Chapter 3, exercise 2: the transposed convolution's output size -------------------------

def check_transposed_output_size(fn) -> bool:
    """Exercise 3.2: fn(n, k, stride, padding, output_padding) = (n − 1)·s − 2p + k + op."""
    right = lambda n, k, s, p, o: (n - 1) * s - 2 * p + k + o
    cases = [(n, k, s, p, o) for n in (1, 4, 7) for k in (1, 3, 4) for s in (1, 2, 3)
             for p in (0, 1) for o in range(s) if right(n, k, s, p, o) >= 1]
    outs = []
    for case in cases:
        out, problem = _call(fn, *case)
        if problem:
            return _verdict(False, problem + " Undo the conv2d size formula: n = (H' + 2p − k)/s "
                                             "+ 1, solved for H', plus output_padding.")
        outs.append(out)
    if all(out == right(*case) for out, case in zip(outs, cases)):
        return _verdict(True, f"the output size is right on {len(cases)} cases.")
    mistakes = [
        (lambda n, k, s, p, o: (n - 1) * s - 2 * p + k, "output_padding adds that many rows at "
         "the end of the output; add it."),
        (lambda n, k, s, p, o: (n - 1) * s + k + o, "padding p of the conv it undoes removes p "
         "rows on each side of the transposed output: subtract 2p."),
        (lambda n, k, s, p, o: (n + 2 * p - k) // s + 1, "that is conv2d's output size; the "
         "transposed conv goes the other way: H' = (n − 1)·s − 2p + k + output_padding."),
    ]
    for mistake, hint in mistakes:      # a mistake made on every case gets its own hint
        if all(out == mistake(*case) for out, case in zip(outs, cases)):
            return _verdict(False, hint)
    case, out = next((c, o) for c, o in zip(cases, outs) if o != right(*c))
    return _verdict(False, f"for (n, k, stride, padding, output_padding) = {case} expected "
                           f"{right(*case)}, got {out}.")


# ---- Chapter 3, exercise 3: the bilinear tent -------------------------------------------------

def check_bilinear_tent(fn) -> bool:
    """Exercise 3.3: fn(f) = the 1-D bilinear upsampling kernel for factor f: length
    2f − f mod 2, K[a] = 1 − |a − c| / f with c = (length − 1) / 2."""
    for f in (1, 2, 3, 4, 5, 8):
        out, problem = _call(fn, f)
        if problem:
            return _verdict(False, problem + " The kernel is a tent: 1 at its centre, falling by "
                                             "1/f per tap.")
        out = np.asarray(out, np.float64).ravel()
        size = 2 * f - f % 2
        want = 1 - np.abs(np.arange(size) - (size - 1) / 2) / f
        if out.size != size:
            return _verdict(False, f"for f={f} the kernel has 2f − (f mod 2) = {size} taps, got "
                                   f"{out.size}.")
        if np.allclose(out, want / want.sum(), atol=1e-6) and f > 1:
            return _verdict(False, "normalised to sum 1: each output pixel gets weights from "
                                   "taps f apart, and those must sum to 1 (the whole kernel sums "
                                   "to f); use K[a] = 1 − |a − c| / f.")
        if not np.allclose(out, want, atol=1e-6):
            return _verdict(False, f"for f={f} expected {np.round(want, 3).tolist()}, got "
                                   f"{np.round(out, 3).tolist()}.")
    return _verdict(True, "the tent matches for f = 1, 2, 3, 4, 5, 8.")

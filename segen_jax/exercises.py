"""Checkers for the notebooks' exercises: a student gets "correct" or a precise hint.

Each checker takes the student's function, runs it on cases with known answers, prints one
verdict line (`✓ correct: ...` or `✗ not yet: <hint>`) and returns True or False. A function
that still raises NotImplementedError gets the exercise's first hint. Checkers never raise, so
a notebook with an unsolved exercise still runs top to bottom. Solutions: `solutions/`.
"""
import jax
import jax.numpy as jnp
import numpy as np


def _verdict(ok: bool, message: str) -> bool:
    print(("✓ correct: " if ok else "✗ not yet: ") + message)
    return ok


def _call(fn, *args):
    """(result, None) or (None, hint) when the student's function raises."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "not implemented yet (the function still raises NotImplementedError)."
    except Exception as err:  # noqa: BLE001 - any error becomes a hint for the student
        return None, f"calling it raised {type(err).__name__}: {err}"


# ---- Chapter 0, exercise 1: a numerically stable log-softmax ---------------------------------

def check_log_softmax(fn) -> bool:
    """Exercise 0.1: fn(z) = log softmax(z) over the last axis, stable for large |z|.

    log softmax(z)_i = z_i − log Σ_j exp z_j = (z_i − m) − log Σ_j exp(z_j − m), m = max_j z_j.
    """
    z = jax.random.normal(jax.random.key(0), (4, 5)) * 3
    out, problem = _call(fn, z)
    if problem and "broadcast" in problem:
        return _verdict(False, problem + ". The sum over classes has shape (B,), z has (B, K): "
                                         "keep the reduced axis with keepdims=True.")
    if problem:
        return _verdict(False, problem + " Start from log softmax(z)_i = z_i − log Σ_j exp(z_j).")
    out = np.asarray(out)
    want = np.asarray(jax.nn.log_softmax(z, axis=-1))
    if out.shape != want.shape:
        return _verdict(False, f"for z of shape {z.shape} the output must have the same shape, "
                               f"got {out.shape}: keep the reduced axis with keepdims=True.")
    if np.allclose(out, jax.nn.log_softmax(z, axis=0), atol=1e-5):
        return _verdict(False, "you normalised over axis 0 (the batch); the classes are the "
                               "last axis: reduce with axis=-1.")
    if np.allclose(out, jax.nn.softmax(z, axis=-1), atol=1e-5):
        return _verdict(False, "that is softmax itself; take its logarithm (without computing "
                               "softmax first: subtract log Σ_j exp z_j from z).")
    if not np.allclose(out, want, atol=1e-5):
        return _verdict(False, "the values differ from log softmax on small inputs; check "
                               "log softmax(z)_i = z_i − log Σ_j exp(z_j) along the last axis.")
    big = jnp.array([[1000.0, 0.0, -1000.0], [-500.0, -500.0, -501.0]])
    out_big, problem = _call(fn, big)
    if problem:
        return _verdict(False, problem)
    if not np.all(np.isfinite(np.asarray(out_big))):
        return _verdict(False, "exp(1000) overflows float32 to inf, giving nan or inf. Subtract "
                               "m = max_j z_j first: log Σ_j exp z_j = m + log Σ_j exp(z_j − m).")
    if not np.allclose(out_big, jax.nn.log_softmax(big, axis=-1), atol=1e-4):
        return _verdict(False, "finite but wrong for large logits: after subtracting m from z, "
                               "add m back inside the log-sum-exp (or subtract it from z only).")
    jitted, problem = _call(jax.jit(fn), z)
    if problem:
        return _verdict(False, "it works eagerly but not under jax.jit: " + problem +
                               " Avoid Python `if`/float() on array values; use jnp functions.")
    return _verdict(True, "log-softmax matches jax.nn.log_softmax, also for logits of ±1000 "
                          "and under jit.")


# ---- Chapter 0, exercise 2: per-example gradients with vmap ----------------------------------

def _example_loss(params, x, y):
    """Cross-entropy of one example under logistic regression: −log softmax(x·W + b)_y."""
    logits = x @ params["w"] + params["b"]
    return -jax.nn.log_softmax(logits)[y]


def check_per_example_grads(fn) -> bool:
    """Exercise 0.2: fn(params, x, y) -> gradients of each example's loss, stacked.

    params = {"w": (D, K), "b": (K,)}, x: (B, D), y: (B,) int. The loss of example n is
    ℓ_n = −log softmax(x_n W + b)_{y_n}; the answer is {"w": (B, D, K), "b": (B, K)} with
    ∂ℓ_n/∂W = x_nᵀ (softmax(x_n W + b) − onehot(y_n)) and ∂ℓ_n/∂b = softmax(...) − onehot(y_n).
    """
    kw, kb, kx, ky = jax.random.split(jax.random.key(1), 4)
    d, k, b = 6, 4, 5
    params = {"w": jax.random.normal(kw, (d, k)), "b": jax.random.normal(kb, (k,))}
    x = jax.random.normal(kx, (b, d))
    y = jax.random.randint(ky, (b,), 0, k)
    out, problem = _call(fn, params, x, y)
    if problem:
        return _verdict(False, problem + " Differentiate one example's loss with jax.grad, "
                                         "then map it over the batch with jax.vmap.")
    want = jax.vmap(jax.grad(_example_loss), in_axes=(None, 0, 0))(params, x, y)
    if not isinstance(out, dict) or set(out) != {"w", "b"}:
        return _verdict(False, "return a dict with the keys 'w' and 'b', like params "
                               f"(got {type(out).__name__}).")
    shapes = {key: tuple(np.shape(out[key])) for key in out}
    if shapes == {"w": (d, k), "b": (k,)}:
        return _verdict(False, "those are the shapes of one gradient: you differentiated the "
                               "batch loss. Map over examples: jax.vmap(jax.grad(loss), "
                               "in_axes=(None, 0, 0)) (params shared, x and y batched).")
    if shapes != {"w": (b, d, k), "b": (b, k)}:
        return _verdict(False, f"expected shapes w {(b, d, k)}, b {(b, k)} for B={b}, D={d}, "
                               f"K={k}; got {shapes}.")
    ratio = np.asarray(out["b"]) / np.where(np.asarray(want["b"]) == 0, 1, np.asarray(want["b"]))
    if np.allclose(ratio, 1 / b, atol=1e-4):
        return _verdict(False, f"the gradients are {b}x too small: each example's own loss "
                               "must not be divided by the batch size.")
    if np.allclose(out["w"], -np.asarray(want["w"]), atol=1e-4):
        return _verdict(False, "the sign is flipped: the loss is −log p(y|x), and its gradient "
                               "with respect to the logits is softmax − onehot.")
    if not all(np.allclose(out[key], want[key], atol=1e-4) for key in ("w", "b")):
        return _verdict(False, "right shapes, wrong values: per example, ∂ℓ/∂b = softmax(xW+b) "
                               "− onehot(y) and ∂ℓ/∂W = xᵀ(softmax(xW+b) − onehot(y)).")
    return _verdict(True, "per-example gradients match jax.vmap(jax.grad(loss)).")


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

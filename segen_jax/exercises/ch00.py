"""Checkers for chapter 0 (notebooks/00_jax_primer.ipynb)."""
import jax
import jax.numpy as jnp
import numpy as np

from segen_jax.exercises._common import _call, _verdict


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

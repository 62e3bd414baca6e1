"""Checkers for chapter 6 (notebooks/06_vae.ipynb)."""
import jax
import jax.numpy as jnp
import numpy as np

from segen_jax.exercises._common import _call, _verdict


def _array(out, what="an array"):
    """(float64 array, None) when the student's result converts to numbers, else (None, hint)."""
    if out is None:
        return None, f"return {what}, got None (is a `return` missing?)."
    try:
        value = np.asarray(out, dtype=np.float64)
    except Exception:  # noqa: BLE001 - anything that is not numbers becomes a hint
        return None, f"return {what}, got {type(out).__name__}."
    return value, None


def _show(values) -> str:
    return np.array2string(np.asarray(values, dtype=np.float64), precision=4, separator=", ")


# ---- Chapter 6, exercise 1: the KL term of the ELBO -------------------------------------------

def check_gaussian_kl(fn) -> bool:
    """Exercise 6.1: fn(mu, logvar) = KL(N(mu, diag exp(logvar)) ‖ N(0, I))
    = ½ Σ_j (exp(logvar_j) + mu_j² − 1 − logvar_j), summed over the last axis:
    (..., L), (..., L) -> (...)."""
    rng = np.random.default_rng(6)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    cases = (
        (np.zeros((2, 4)), np.zeros((2, 4)), "mu = 0, logvar = 0 (q = p)"),
        (np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.25, -1.0, 2.0]]), np.zeros((2, 4)),
         "logvar = 0 and mu ≠ 0"),
        (np.zeros((2, 4)), np.array([[-2.0, -0.5, 0.7, 1.5], [1.0, -3.0, 0.2, 0.0]]),
         "mu = 0 and logvar ≠ 0"),
        (rng.standard_normal((6, 4)), rng.uniform(-3, 2, (6, 4)), "a random batch (6, 4)"),
        (rng.standard_normal((2, 3, 5)), rng.uniform(-3, 2, (2, 3, 5)),
         "inputs of shape (2, 3, 5)"),
    )
    for mu, logvar, what in cases:
        mu, logvar = f32(mu), f32(logvar)
        out, problem = _call(fn, mu, logvar)
        if problem:
            return _verdict(False, problem + " KL = ½ Σ_j (exp(logvar_j) + mu_j² − 1 − "
                                             "logvar_j), summed over the last axis.")
        got, problem = _array(out, "an array of KLs, one per example")
        if problem:
            return _verdict(False, problem)
        m64, v64 = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
        want = 0.5 * np.sum(np.exp(v64) + m64 ** 2 - 1 - v64, axis=-1)   # float64 reference
        if not np.all(np.isfinite(got)):
            return _verdict(False, f"the result for {what} is not finite (nan or inf): "
                                   "logvar = log σ² can be 0 or negative, so do not take its "
                                   "log or square root (it is not σ); the variance is "
                                   "exp(logvar) and log σ² is logvar itself.")
        dim = mu.shape[-1]
        if got.shape != want.shape:
            if got.ndim == 0:
                return _verdict(False, f"one KL per example: for {what} expected shape "
                                       f"{want.shape}, got one number: you reduced over the "
                                       "batch too; sum only over the last axis (axis=-1).")
            if got.shape == mu.shape:
                return _verdict(False, f"for {what} expected shape {want.shape}, got "
                                       f"{got.shape}: sum the L = {dim} per-dimension terms "
                                       "over the latent axis (axis=-1).")
            if got.shape == tuple(mu.shape[1:]) or got.shape == (dim,):
                return _verdict(False, f"for {what} expected shape {want.shape}, got "
                                       f"{got.shape}: you reduced over the batch (axis 0); "
                                       "reduce over the last, latent axis (axis=-1).")
            return _verdict(False, f"for mu and logvar of shape {mu.shape} expected one KL per "
                                   f"example, shape {want.shape}; got {got.shape}: reduce "
                                   "over the last axis only (axis=-1).")
        if np.allclose(got, want, rtol=1e-5, atol=1e-5):
            continue
        m, v = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
        terms = np.exp(v) + m ** 2 - 1 - v
        mistakes = (
            (0.5 * np.sum(np.exp(v / 2) + m ** 2 - 1 - v, -1),
             "exp(logvar / 2) is σ, but the KL needs the variance σ² = exp(logvar)."),
            (0.5 * np.sum(np.exp(v / 2) + m ** 2 - 1 - v / 2, -1),
             "that uses σ = exp(logvar / 2) and log σ; the KL needs the variance σ² = "
             "exp(logvar) and log σ² = logvar."),
            (np.sum(terms, -1),
             "twice the right value: the KL has a factor ½ in front of the sum."),
            (0.5 * np.sum(np.exp(v) + m ** 2 - 1 + v, -1),
             "check the sign of the log term: it is − log σ² = − logvar, so the KL is "
             "½ Σ (exp(logvar) + mu² − 1 − logvar)."),
            (0.5 * np.mean(terms, -1),
             f"you averaged over the latent axis; the KL of a diagonal Gaussian is the sum of "
             f"its L = {dim} one-dimensional KLs (jnp.sum(..., axis=-1)), not their mean."),
            (0.5 * np.sum(np.exp(2 * v) + m ** 2 - 1 - 2 * v, -1),
             "you read the argument as log σ; it is the log-variance log σ², so σ² = "
             "exp(logvar) and the log term is logvar itself."),
        )
        for wrong, hint in mistakes:
            if np.allclose(got, wrong, rtol=1e-4, atol=1e-5):
                return _verdict(False, hint)
        if not np.any(want):
            return _verdict(False, f"for {what} the two Gaussians are equal and the KL must be "
                                   f"0, got {_show(got)}: check the − 1 in "
                                   "½ Σ (exp(logvar) + mu² − 1 − logvar).")
        return _verdict(False, f"for {what} expected {_show(want)}, got {_show(got)}: "
                               "KL = ½ Σ_j (exp(logvar_j) + mu_j² − 1 − logvar_j).")
    return _verdict(True, "0 for q = p, right with mu alone, logvar alone and at random, "
                          "one KL per example (as losses.gaussian_kl computes it).")


# ---- Chapter 6, exercise 2: the reparameterisation trick --------------------------------------

def check_reparameterize(fn) -> bool:
    """Exercise 6.2: fn(key, mu, logvar) = mu + exp(logvar / 2)·eps with eps ~ N(0, I) of mu's
    shape drawn from key: a sample of N(mu, diag exp(logvar)) differentiable in mu, logvar."""
    n = 20000                                  # one shape throughout: (n, 3), rows alike
    row_mu, row_logvar = np.array([0.5, -2.0, 3.0]), np.array([0.0, -1.5, 1.2])
    mu = jnp.asarray(np.tile(row_mu, (n, 1)), jnp.float32)
    logvar = jnp.asarray(np.tile(row_logvar, (n, 1)), jnp.float32)
    key, other = jax.random.key(0), jax.random.key(1)
    first = (" Write z as a deterministic, differentiable function of mu, logvar and noise drawn "
             "from key whose distribution has no parameters of its own: which noise, and how "
             "must it be scaled and shifted so that z ~ N(mu, diag exp(logvar))?")
    out, problem = _call(fn, key, mu, logvar)
    if problem:
        return _verdict(False, problem + first)
    z, problem = _array(out, "z, an array of mu's shape")
    if problem:
        return _verdict(False, problem)
    if z.shape != mu.shape:
        return _verdict(False, f"z has mu's shape {mu.shape} (one sample per entry), got "
                               f"{z.shape}: draw eps with jax.random.normal(key, mu.shape).")
    if not np.all(np.isfinite(z)):
        return _verdict(False, "z is not finite: logvar = log σ² can be negative, so its "
                               "square root is nan; σ = exp(logvar / 2).")
    again, problem = _call(fn, key, mu, logvar)
    if problem:
        return _verdict(False, problem)
    again, problem = _array(again, "z, an array of mu's shape")
    if problem or again.shape != z.shape or not np.array_equal(again, z):
        return _verdict(False, "the same key gave two different z: draw eps from the key with "
                               "jax.random.normal(key, mu.shape), not with np.random, so that "
                               "a sample is reproducible and JAX can trace it.")
    moved, problem = _call(fn, other, mu, logvar)
    if problem:
        return _verdict(False, problem)
    moved, problem = _array(moved, "z, an array of mu's shape")
    if not problem and moved.shape == z.shape and np.array_equal(moved, z):
        return _verdict(False, "two different keys gave the same z: the noise must come from "
                               "the key passed in, jax.random.normal(key, mu.shape) (not a "
                               "fixed key or a seeded numpy generator).")

    mean, var = z.mean(0), z.var(0, ddof=1)
    want_mean, want_var = row_mu, np.exp(row_logvar)
    near = lambda got, want, se: bool(np.all(np.abs(got - want) <= 5 * se))
    se_var = lambda v: v * np.sqrt(2 / (n - 1))
    if np.all(var < 1e-10):
        return _verdict(False, f"all {n} rows of z are identical: eps must have mu's shape, "
                               "one independent N(0, 1) draw per entry.")
    if near(mean, 0.0, 1 / np.sqrt(n)) and near(var, 1.0, se_var(1.0)):
        return _verdict(False, "z has mean 0 and variance 1: you returned eps alone; shift and "
                               "scale it, z = mu + σ·eps.")
    if near(var, want_var ** 2, se_var(want_var ** 2)):
        return _verdict(False, f"the variance of z over {n} draws is {_show(var)} ≈ "
                               "exp(logvar)², off by a square: exp(logvar) is already the "
                               "variance σ²; the standard deviation is σ = exp(logvar / 2).")
    if not near(mean, want_mean, np.sqrt(want_var / n)):
        return _verdict(False, f"the mean of z over {n} draws is {_show(mean)}, expected mu = "
                               f"{_show(want_mean)}: z = mu + σ·eps.")
    if not near(var, want_var, se_var(want_var)):
        return _verdict(False, f"the variance of z over {n} draws is {_show(var)}, expected "
                               f"exp(logvar) = {_show(want_var)}: scale eps by σ = "
                               "exp(logvar / 2).")

    grad_mu, problem = _call(jax.grad(lambda m: jnp.sum(jnp.asarray(fn(key, m, logvar)))), mu)
    if problem:
        return _verdict(False, f"the samples are right, but jax.grad through your function "
                               f"failed: {problem} Write it with jax.numpy and jax.random.")
    grad_mu = np.asarray(grad_mu, np.float64)
    if np.allclose(grad_mu, 0.0):
        return _verdict(False, "dz/dmu is 0: no gradient reaches mu (is there a "
                               "jax.lax.stop_gradient?); z = mu + σ·eps has dz/dmu = 1.")
    if not np.allclose(grad_mu, 1.0, atol=1e-5):
        return _verdict(False, f"dz/dmu should be 1 for every entry, got {_show(grad_mu[0])} "
                               "in the first row.")
    grad_lv, problem = _call(jax.grad(lambda v: jnp.sum(jnp.asarray(fn(key, mu, v)))), logvar)
    if problem:
        return _verdict(False, f"jax.grad with respect to logvar failed: {problem}")
    grad_lv = np.asarray(grad_lv, np.float64)
    want_lv = (z - np.asarray(mu, np.float64)) / 2
    if np.allclose(grad_lv, 0.0) and not np.allclose(want_lv, 0.0):
        return _verdict(False, "dz/dlogvar is 0: the gradient must flow through σ = "
                               "exp(logvar / 2) (no jax.lax.stop_gradient); only eps is a "
                               "constant.")
    if not np.allclose(grad_lv, want_lv, rtol=1e-4, atol=1e-5):
        return _verdict(False, f"dz/dlogvar should be ½·σ·eps = (z − mu) / 2, in the first row "
                               f"{_show(want_lv[0])}; got {_show(grad_lv[0])}.")
    return _verdict(True, f"mean mu and variance exp(logvar) over {n} draws, the same z for "
                          "the same key, dz/dmu = 1 and dz/dlogvar = (z − mu) / 2.")


# ---- Chapter 6, exercise 3: the IWAE bound, log (1/k) Σ_i w_i, stably -------------------------

def _log_mean_exp64(log_w):
    log_w = np.asarray(log_w, np.float64)
    top = log_w.max(0)
    return top + np.log(np.mean(np.exp(log_w - top), 0))


def check_log_mean_exp(fn) -> bool:
    """Exercise 6.3: fn(log_w (k, N)) = log ((1/k) Σ_i exp(log_w[i])), shape (N,): the
    importance-weighted bound from the log weights, exact even where exp(log_w) over- or
    underflows float32."""
    rng = np.random.default_rng(63)
    k, n = 5, 4
    moderate = jnp.asarray(rng.standard_normal((k, n)) * 3, jnp.float32)
    extreme = jnp.asarray(np.stack([-1000 + rng.standard_normal(k), 1000 + rng.standard_normal(k),
                                    np.array([0.0, -50.0, 80.0, 3.0, -1.0]),
                                    np.array([-1000.0, 1000.0, 0.0, -999.0, 999.0])], 1),
                          jnp.float32)
    out, problem = _call(fn, moderate)
    if problem:
        return _verdict(False, problem + " log (1/k) Σ_i exp(log_w_i) over axis 0 = "
                                         "logsumexp(log_w, axis=0) − log k.")
    got, problem = _array(out, f"an array of shape ({n},)")
    if problem:
        return _verdict(False, problem)
    if not np.all(np.isfinite(got)):
        return _verdict(False, f"the result {_show(got)} is not finite for log weights of "
                               "size about 3.")
    want = _log_mean_exp64(moderate)
    lw = np.asarray(moderate, np.float64)
    if got.shape != want.shape:
        if got.shape == (k,):
            return _verdict(False, f"for log_w of shape ({k}, {n}) expected one bound per "
                                   f"example, shape ({n},), got ({k},): you reduced over the "
                                   "wrong axis; the k samples are axis 0.")
        return _verdict(False, f"for log_w of shape ({k}, {n}) expected one bound per example, "
                               f"shape ({n},), got {got.shape}: reduce over axis 0 (the k "
                               "samples) only.")
    if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
        if np.allclose(got, want + np.log(k), rtol=1e-5, atol=1e-4):
            return _verdict(False, f"that is log Σ_i w_i (log-sum-exp), {np.log(k):.4f} = "
                                   "log k too high: the mean divides by k, so subtract log k.")
        if np.allclose(got, lw.mean(0), rtol=1e-5, atol=1e-4):
            return _verdict(False, "that is the mean of log w, the ELBO-like average; by Jensen "
                                   "it is lower. The bound is the log of the mean of "
                                   "w = exp(log w), not the mean of log w.")
        if np.allclose(got, want - lw.max(0), rtol=1e-5, atol=1e-4):
            return _verdict(False, "you subtracted the column max m but did not add it back: "
                                   "m + log mean exp(log_w − m).")
        return _verdict(False, f"expected {_show(want)}, got {_show(got)}: log (1/k) Σ_i "
                               "exp(log_w[i]) over axis 0.")
    out, problem = _call(fn, extreme)
    if problem:
        return _verdict(False, f"right for moderate log weights, but with log weights near "
                               f"±1000: {problem}")
    got, problem = _array(out, f"an array of shape ({n},)")
    if problem:
        return _verdict(False, problem)
    want = _log_mean_exp64(extreme)
    if got.shape != want.shape:
        return _verdict(False, f"for log weights near ±1000 expected shape {want.shape}, got "
                               f"{got.shape}.")
    if not np.all(np.isfinite(got)):
        return _verdict(False, f"not finite for log weights near ±1000 (got {_show(got)}): in "
                               "float32 exp(1000) overflows to inf and exp(−1000) underflows "
                               "to 0. Subtract the max of each column first: m + log mean "
                               "exp(log_w − m) with m = max over axis 0 (keepdims=True).")
    if not np.allclose(got, want, rtol=1e-5, atol=1e-3):
        return _verdict(False, f"finite but wrong for log weights near ±1000: expected "
                               f"{_show(want)}, got {_show(got)}. Do not clip or round log w: "
                               "shift each column by its max m and add m back, "
                               "m + log mean exp(log_w − m).")
    return _verdict(True, "logsumexp(log_w, 0) − log k per example, exact for log weights "
                          "near ±1000 in float32.")

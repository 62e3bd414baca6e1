"""Checkers for chapter 5 (notebooks/05_gan.ipynb)."""
import jax
import jax.numpy as jnp
import numpy as np

from segen_jax.exercises._common import _call, _scalar, _verdict


# ---- Chapter 5, exercise 1: the optimal discriminator and the game's value --------------------

def check_optimal_value(fn) -> bool:
    """Exercise 5.1: fn(p, q, dx) = C(G) = V(D*, G) = Σ [p log D* + q log(1 − D*)]·dx with
    D* = p / (p + q), for densities p, q sampled on a grid of spacing dx (terms with a zero
    density count 0)."""
    x = np.linspace(-8, 8, 3201)
    dx = float(x[1] - x[0])
    gauss = lambda m, s: np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    box = np.where(np.abs(x - 4) < 1, 0.5, 0.0)       # zero over most of the line
    cases = ((gauss(0, 1), gauss(0, 1), "p = q"), (gauss(-1, 1), gauss(1, 1.5), "two Gaussians"),
             (gauss(0, 2), box, "q zero on most of the line"),
             (box, gauss(0, 2), "p zero on most of the line"))
    for p, q, what in cases:
        out, problem = _call(fn, p, q, dx)
        if problem:
            return _verdict(False, problem + " D* = p / (p + q); sum p·log D* + q·log(1 − D*) "
                                             "times dx.")
        got, problem = _scalar(out)
        if problem and "finite" in problem:
            return _verdict(False, f"{problem[:-1]} for {what}: where a density is 0 its term "
                                   "is 0·log(…) = 0; skip it (np.where) instead of computing "
                                   "log 0.")
        if problem:
            return _verdict(False, problem)
        # q·log(1 − D*) = q·log(q / (p + q)): the same, without rounding 1 − D* to 0
        with np.errstate(divide="ignore", invalid="ignore"):
            total = np.where(p + q > 0, p + q, 1.0)
            terms = (np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / total), 0.0)
                     + np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / total), 0.0))
        want = float(np.sum(terms) * dx)
        if what == "p = q" and not abs(got - want) <= 1e-3:
            return _verdict(False, f"for p = q, D* = 1/2 everywhere and C(G) = −log 4 = "
                                   f"{-np.log(4):.4f}; got {got:.4f}.")
        if not abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            return _verdict(False, f"for {what} expected {want:.5f}, got {got:.5f}: check "
                                   "D* = p / (p + q) and the log(1 − D*) term for q.")
    return _verdict(True, "C(G) is right, −log 4 at p = q included, and finite where p or q "
                          "is 0.")


# ---- Chapter 5, exercise 2: a generator loss that does not overflow ---------------------------

def check_non_saturating_loss(fn) -> bool:
    """Exercise 5.2: fn(logits (N,)) = mean −log σ(ℓ), exact for any float32 logit."""
    logits = jnp.asarray([-200.0, -110.0, -20.0, -1.0, 0.0, 3.0, 50.0], jnp.float32)
    out, problem = _call(fn, logits)
    if problem:
        return _verdict(False, problem + " −log σ(ℓ) = log(1 + e^(−ℓ)) = softplus(−ℓ).")
    got, problem = _scalar(out)
    if problem and "finite" in problem:
        return _verdict(False, "the loss is not finite: σ(−200) rounds to 0 in float32, so "
                               "log σ(ℓ) = −inf. Rewrite −log σ(ℓ) without computing σ first.")
    if problem:
        return _verdict(False, problem)
    want = float(jnp.mean(jax.nn.softplus(-logits)))
    if not abs(got - want) <= 1e-4 * abs(want):
        return _verdict(False, f"expected the mean of −log σ(ℓ) = {want:.4f}, got {got:.4f}.")
    grad, problem = _call(jax.grad(lambda l: jnp.asarray(fn(l)).sum()), logits)
    if problem:
        return _verdict(False, f"the value is right, but jax.grad of your function failed: "
                               f"{problem} Write it with jax.numpy so JAX can differentiate it.")
    if not np.all(np.isfinite(np.asarray(grad))):
        return _verdict(False, "the value is right but its gradient is not finite everywhere: "
                               "use jax.nn.softplus (or logaddexp), whose derivative is stable.")
    return _verdict(True, "finite and exact from ℓ = −200 to 50, gradients too.")


# ---- Chapter 5, exercise 3: the gradient penalty ----------------------------------------------

def check_gradient_penalty(fn) -> bool:
    """Exercise 5.3: fn(critic, real, fake, eps) = mean over examples of (‖∇f(x̂)‖ − 1)² at
    x̂ = eps·real + (1 − eps)·fake, eps (N, 1) given (one weight per example)."""
    rng = np.random.default_rng(5)
    w = jnp.asarray(rng.standard_normal((3, 1)), jnp.float32)
    critics = {"linear": lambda x: x @ w, "quadratic": lambda x: jnp.sum(x ** 2, 1, keepdims=True)}
    real = jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    fake = jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    eps = jnp.asarray(rng.uniform(size=(6, 1)), jnp.float32)
    unit = lambda x: x @ (w / jnp.linalg.norm(w))
    out, problem = _call(fn, unit, real, fake, eps)
    if problem:
        return _verdict(False, problem + " Form x̂, take jax.grad of sum(critic(x̂)) w.r.t. x̂, "
                                         "a norm per row, then mean((norm − 1)²).")
    got, problem = _scalar(out)
    if problem:
        return _verdict(False, problem + " The penalty is one number: the mean over the batch.")
    if not abs(got) <= 1e-5:
        return _verdict(False, f"a linear critic with a unit-norm weight has ‖∇f‖ = 1 "
                               f"everywhere, so its penalty is 0; got {got:.4g}.")
    for name, critic in critics.items():
        mixed = eps * real + (1 - eps) * fake
        grads = jax.grad(lambda x: jnp.sum(critic(x)))(mixed)
        want = float(jnp.mean((jnp.linalg.norm(grads, axis=1) - 1) ** 2))
        out, problem = _call(fn, critic, real, fake, eps)
        if problem:
            return _verdict(False, problem)
        got, problem = _scalar(out)
        if problem:
            return _verdict(False, problem)
        swapped = jax.grad(lambda x: jnp.sum(critic(x)))((1 - eps) * real + eps * fake)
        if name == "quadratic" and abs(got - float(jnp.mean(
                (jnp.linalg.norm(swapped, axis=1) - 1) ** 2))) < 1e-4 and abs(got - want) > 1e-4:
            return _verdict(False, "eps weighs the real example: x̂ = eps·real + (1 − eps)·fake.")
        if not abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            return _verdict(False, f"for a {name} critic expected {want:.4f}, got {got:.4f}: the "
                                   "norm is per example (over its features), the mean over "
                                   "examples, and the penalty (‖∇f‖ − 1)², not ‖∇f‖².")
    return _verdict(True, "0 for a unit-norm linear critic, right for linear and quadratic ones.")


# ---- Chapter 5, exercise 4: the Fréchet distance in one dimension -----------------------------

def check_frechet_1d(fn) -> bool:
    """Exercise 5.4: fn(mu1, sd1, mu2, sd2) = FD between N(mu1, sd1²) and N(mu2, sd2²) in 1-D,
    (mu1 − mu2)² + (sd1 − sd2)² (the matrix formula with 1x1 matrices)."""
    from segen_jax.metrics import frechet_distance

    for mu1, sd1, mu2, sd2 in ((0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -1.0, 0.5), (3.0, 0.1, 2.5, 3.0)):
        out, problem = _call(fn, mu1, sd1, mu2, sd2)
        if problem:
            return _verdict(False, problem + " Start from |μ1 − μ2|² + tr(Σ1 + Σ2 − "
                                             "2(Σ1^½ Σ2 Σ1^½)^½) with Σ = sd².")
        want = frechet_distance([mu1], [[sd1 ** 2]], [mu2], [[sd2 ** 2]])
        got, problem = _scalar(out)
        if problem:
            return _verdict(False, problem)
        if abs(got - ((mu1 - mu2) ** 2 + (sd1 ** 2 - sd2 ** 2) ** 2)) < 1e-6 and abs(got - want) > 1e-6:
            return _verdict(False, "that compares variances; the FD compares standard "
                                   "deviations: the square root of sd1²·sd2² is sd1·sd2.")
        if not abs(got - want) <= 1e-6 * max(1.0, want):
            return _verdict(False, f"for N({mu1}, {sd1}²) vs N({mu2}, {sd2}²) expected "
                                   f"{want:.4f}, got {got:.4f}.")
    return _verdict(True, "(μ1 − μ2)² + (σ1 − σ2)², equal to metrics.frechet_distance.")

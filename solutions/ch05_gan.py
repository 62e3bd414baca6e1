"""Solutions to the exercises of notebooks/05_gan.ipynb (try them first!)."""
import jax
import jax.numpy as jnp
import numpy as np


def optimal_value(p, q, dx):
    """Exercise 5.1: C(G) = Σ [p log D* + q log(1 − D*)]·dx, D* = p / (p + q); 0·log 0 = 0."""
    total = p + q
    safe = np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore"):
        real = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / safe), 0.0)
        fake = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / safe), 0.0)
    return float(np.sum(real + fake) * dx)


def non_saturating_loss(logits):
    """Exercise 5.2: −log σ(ℓ) = softplus(−ℓ), averaged."""
    return jnp.mean(jax.nn.softplus(-logits))


def gradient_penalty(critic, real, fake, eps):
    """Exercise 5.3: mean (‖∇f(x̂)‖ − 1)², x̂ = eps·real + (1 − eps)·fake."""
    mixed = eps * real + (1 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(mixed)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))
    return jnp.mean((norms - 1) ** 2)


def frechet_1d(mu1, sd1, mu2, sd2):
    """Exercise 5.4: (μ1 − μ2)² + σ1² + σ2² − 2σ1σ2 = (μ1 − μ2)² + (σ1 − σ2)²."""
    return (mu1 - mu2) ** 2 + (sd1 - sd2) ** 2

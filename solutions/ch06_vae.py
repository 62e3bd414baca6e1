"""Solutions to the exercises of notebooks/06_vae.ipynb (try them first!)."""
import jax
import jax.numpy as jnp


def gaussian_kl(mu, logvar):
    """Exercise 6.1: KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (σ_j² + μ_j² − 1 − log σ_j²) with
    σ² = exp(logvar), summed over the last (latent) axis: one KL per example."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + mu ** 2 - 1.0 - logvar, axis=-1)


def reparameterize(key, mu, logvar):
    """Exercise 6.2: z = μ + σ·ε, σ = exp(logvar / 2), ε ~ N(0, I) drawn from key (mu's shape)."""
    eps = jax.random.normal(key, jnp.shape(mu), jnp.result_type(mu))
    return mu + jnp.exp(0.5 * logvar) * eps


def log_mean_exp(log_w):
    """Exercise 6.3: log (1/k) Σ_i exp(log_w[i]) over axis 0, (k, N) -> (N,): shift by each
    column's max m so that no exp over- or underflows, then add m back."""
    m = jnp.max(log_w, axis=0, keepdims=True)
    return m[0] + jnp.log(jnp.mean(jnp.exp(log_w - m), axis=0))

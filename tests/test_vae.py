"""The VAE: model shapes and errors, the Gaussian KL, the Bernoulli likelihood, the ELBO and the
importance-weighted bound, checked against references (integration, optax, a model whose
log p(x) is computable) and on the shipped trained VAE."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given, settings, strategies as st
from scipy import integrate, special, stats

from segen_jax import losses
from segen_jax.models import VAE, reparameterize


def test_vae_shapes_parameter_count_and_errors():
    model = VAE(32, rngs=nnx.Rngs(0))
    x = jnp.zeros((3, 28, 28, 1))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 32)
    assert model.decode(mu).shape == (3, 28, 28, 1)
    logits, mu2, _ = model(x, jax.random.key(0))
    assert logits.shape == (3, 28, 28, 1) and np.array_equal(mu, mu2)
    assert sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))) == 356_385
    with pytest.raises(ValueError, match=r"VAE.encode: images must have shape \(N, 28, 28, 1\), "
                                         r"got \(3, 28, 28\)"):
        model.encode(jnp.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match=r"VAE.decode: z must have shape \(N, 32\), got \(3, 2\)"):
        model.decode(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="VAE: latent_dim must be an int >= 1, got 0"):
        VAE(0, rngs=nnx.Rngs(0))
    deeper = VAE(8, hidden=16, rngs=nnx.Rngs(0))
    assert deeper.decode(deeper.encode(x)[0]).shape == (3, 28, 28, 1)
    assert deeper.enc_hidden.kernel.shape == (7 * 7 * 64, 16)


def test_reparameterize_draws_from_the_gaussian_and_passes_gradients():
    mu, logvar = jnp.array([1.5, -2.0]), jnp.log(jnp.array([0.25, 4.0]))
    z = jax.vmap(lambda k: reparameterize(k, mu, logvar))(jax.random.split(jax.random.key(0),
                                                                           20000))
    np.testing.assert_allclose(z.mean(0), mu, atol=4 * 2 / np.sqrt(20000))
    np.testing.assert_allclose(z.var(0), jnp.exp(logvar), rtol=0.05)
    # dz/dμ = 1 and dz/dlogvar = ½σε, the reparameterisation's point
    key = jax.random.key(1)
    eps = jax.random.normal(key, (2,))
    d_mu, d_logvar = jax.grad(lambda m, v: jnp.sum(reparameterize(key, m, v)), (0, 1))(mu, logvar)
    np.testing.assert_allclose(d_mu, 1.0)
    np.testing.assert_allclose(d_logvar, 0.5 * jnp.exp(0.5 * logvar) * eps, rtol=1e-6)


finite = st.floats(-3, 3, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=4))
def test_gaussian_kl_matches_numerical_integration(pairs):
    mu = jnp.array([m for m, _ in pairs])
    logvar = jnp.array([v for _, v in pairs])
    expected = 0.0
    for m, v in pairs:          # KL of independent dims is the sum of 1-D KLs
        q = stats.norm(m, np.exp(0.5 * v))
        integrand = lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z))
        expected += integrate.quad(integrand, m - 12 * np.exp(0.5 * v),
                                   m + 12 * np.exp(0.5 * v), limit=200)[0]
    np.testing.assert_allclose(float(losses.gaussian_kl(mu, logvar)), expected, rtol=1e-4,
                               atol=1e-5)


def test_gaussian_kl_shapes_zero_and_errors():
    assert losses.gaussian_kl(jnp.zeros((5, 3)), jnp.zeros((5, 3))).shape == (5,)
    assert float(jnp.abs(losses.gaussian_kl(jnp.zeros((5, 3)), jnp.zeros((5, 3)))).max()) == 0
    assert float(losses.gaussian_kl(jnp.ones((1, 3)), jnp.zeros((1, 3)))[0]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="gaussian_kl: mu and logvar must have the same shape"):
        losses.gaussian_kl(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_bernoulli_log_likelihood_is_minus_optax_binary_cross_entropy(n, d, seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    logits = 10 * jax.random.normal(k1, (n, d, d, 1))
    x = jax.random.bernoulli(k2, 0.4, (n, d, d, 1)).astype(jnp.float32)
    expected = -optax.sigmoid_binary_cross_entropy(logits, x).reshape(n, -1).sum(1)
    np.testing.assert_allclose(losses.bernoulli_log_likelihood(logits, x), expected, rtol=1e-5,
                               atol=1e-4)
    grad = jax.grad(lambda l: losses.bernoulli_log_likelihood(l, x).sum())(logits)
    np.testing.assert_allclose(grad, x - jax.nn.sigmoid(logits), atol=1e-6)   # x − σ(l)
    with pytest.raises(ValueError, match="bernoulli_log_likelihood: logits and x must be"):
        losses.bernoulli_log_likelihood(logits, x[:, :, :, 0])


def test_binarize_draws_each_pixel_with_its_grey_level():
    grey = jnp.full((200, 28, 28, 1), 0.3)
    x = losses.binarize(jax.random.key(0), grey)
    assert set(np.unique(x).tolist()) == {0.0, 1.0} and x.dtype == grey.dtype
    assert abs(float(x.mean()) - 0.3) < 0.005      # 156,800 draws: SE 0.0012
    assert float(losses.binarize(jax.random.key(1), jnp.ones((2, 3))).min()) == 1.0


class OnePixelVAE:
    """A model small enough to integrate: z ~ N(0, 1), p(x=1|z) = σ(a·z + b) for one pixel,
    q(z|x) = N(μ_x, σ_x²). log p(x) = log ∫ N(z; 0, 1) σ(±(a z + b)) dz."""

    def __init__(self, a=3.0, b=-0.5, q=((0.6, -0.7), (-0.4, -0.3))):
        self.a, self.b, self.q = a, b, jnp.array(q)      # q[x] = (μ, log σ²) for x = 0, 1
        self.latent_dim = 1

    def encode(self, x):
        params = self.q[x[:, 0].astype(jnp.int32)]
        return params[:, :1], params[:, 1:]

    def decode(self, z):
        return self.a * z + self.b

    def log_px(self, x):
        sign = 1.0 if x == 1 else -1.0
        f = lambda z: stats.norm.pdf(z) * special.expit(sign * (self.a * z + self.b))
        return np.log(integrate.quad(f, -10, 10, limit=200)[0])


def test_iwae_bound_rises_with_k_towards_the_exact_log_likelihood():
    model = OnePixelVAE()
    x = jnp.array([[0.0], [1.0]] * 500)                  # 1,000 examples, both values
    exact = np.array([model.log_px(0), model.log_px(1)] * 500)
    means = {}
    for k in (1, 10, 100, 5000):
        bound = np.asarray(losses.iwae_bound(model, x, jax.random.key(k), k))
        means[k] = float(np.mean(bound - exact))         # E[L_k] − log p(x) ≤ 0
    assert means[1] < means[10] < means[100] < 0.0
    assert abs(means[5000]) < 2e-3, means                 # the gap closes as k grows
    # E[L_1] = ELBO; both are unbiased one-sample estimates of the same expectation
    elbo = np.asarray(losses.elbo(model, x, jax.random.key(5)))
    l1 = np.asarray(losses.iwae_bound(model, x, jax.random.key(6), 1))
    se = np.sqrt(elbo.var() / len(x) + l1.var() / len(x))
    assert abs(elbo.mean() - l1.mean()) < 4 * se


def test_iwae_bound_is_a_stable_log_mean_exp():
    model = OnePixelVAE(a=400.0, b=-300.0)               # log weights near −300: exp underflows
    x = jnp.ones((4, 1))
    log_w = np.asarray(losses.iwae_log_weights(model, x, jax.random.key(0), 7), np.float64)
    bound = np.asarray(losses.iwae_bound(model, x, jax.random.key(0), 7))
    assert np.all(np.isfinite(bound)) and log_w.min() < -100
    shift = log_w.max(0)
    expected = np.log(np.mean(np.exp(log_w - shift), axis=0)) + shift
    np.testing.assert_allclose(bound, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="iwae_log_weights: k must be an int >= 1, got 0"):
        losses.iwae_bound(model, x, jax.random.key(0), 0)
    with pytest.raises(TypeError, match="vae must have encode and decode methods"):
        losses.elbo(object(), x, jax.random.key(0))


def test_a_few_training_steps_raise_the_elbo():
    from segen_jax.recipes import RECIPES
    recipe = RECIPES["vae"]
    graphdef, state, step = recipe.build(0, 2e-3, 50)
    before = recipe.evaluate(graphdef, state, while_training=True)
    batches = recipe.batches(32, 0)(0)
    for _ in range(40):
        state, metrics = step(state, next(batches))
    after = recipe.evaluate(graphdef, state, while_training=True)
    assert set(metrics) == {"loss", "grad_norm", "reconstruction", "kl"}
    assert after["elbo"] > before["elbo"] + 100            # ≈ −545 → ≈ −200 nats
    assert after["nll_iwae"] <= -after["elbo"] + 1.0       # −L_10 ≲ −ELBO on average
    assert after["k"] == 10


@pytest.mark.skipif("vae" not in __import__("segen_jax.weights").weights.available(),
                    reason="no shipped VAE weights")
def test_shipped_vae_bound_equals_the_elbo_at_k1_and_increases_with_k():
    from segen_jax import weights
    from segen_jax.recipes import binarized_test_digits, likelihood_bounds
    model = weights.load("vae")
    x = binarized_test_digits()[:200]
    elbo, l1 = likelihood_bounds(model, x, k=1, seed=0)
    _, l1_again = likelihood_bounds(model, x, k=1, seed=1)
    diff = l1_again - elbo                                 # independent draws: equal means
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(x)), (diff.mean(), diff.std())
    means = [float(likelihood_bounds(model, x, k=k, seed=2)[1].mean()) for k in (1, 10, 100)]
    assert means[0] < means[1] < means[2], means
    assert means[2] - means[0] > 1.0                       # nats: the bound tightens visibly
    record = json.loads((weights.FOLDER / "vae.json").read_text())
    assert record["metrics"]["k"] == 100


def test_active_units_counts_the_latents_that_vary_with_the_input():
    from segen_jax.metrics import active_units
    rng = np.random.default_rng(0)
    mu = np.concatenate([rng.normal(0, 1, (500, 3)), rng.normal(0, 0.05, (500, 2)),
                         np.full((500, 1), 4.0)], axis=1)   # 3 active, 2 below 0.01, 1 constant
    count, activity = active_units(mu)
    assert count == 3 and activity.shape == (6,) and activity[5] == 0
    assert active_units(mu, threshold=1e-4)[0] == 5
    with pytest.raises(ValueError, match=r"active_units: mu must have shape \(n, L\)"):
        active_units(mu[0])


def test_beta_weights_the_kl_in_the_vae_loss():
    from segen_jax.recipes import beta_vae_loss, vae_loss
    model = VAE(4, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(8, 28, 28, 1)), jnp.float32)
    key = jax.random.key(3)
    loss1, m1 = vae_loss(model, x, key)
    loss4, m4 = beta_vae_loss(4.0)(model, x, key)
    assert float(m1["kl"]) > 0
    np.testing.assert_allclose(float(loss1), float(m1["kl"] - m1["reconstruction"]), rtol=1e-6)
    np.testing.assert_allclose(float(loss4), float(4 * m1["kl"] - m1["reconstruction"]),
                               rtol=1e-6)
    assert float(m4["kl"]) == float(m1["kl"])             # same key: same draws, only the weight
    with pytest.raises(ValueError, match="beta_vae_loss: beta must be a number >= 0, got -1"):
        beta_vae_loss(-1)
    with pytest.raises(ValueError, match="beta_vae_loss: max_shift must be an int >= 0"):
        beta_vae_loss(1.0, max_shift=0.5)
    # the shift moves the digits: without it the same key gives another loss
    loss_unshifted, _ = beta_vae_loss(1.0, max_shift=0)(model, x, key)
    assert float(loss_unshifted) != float(loss1)


def test_cli_trains_evaluates_samples_and_exports_a_vae(tmp_path, capsys):
    from segen_jax import cli, weights
    from segen_jax.recipes import RECIPES
    run = tmp_path / "run"
    assert cli.main(["train", "vae", "--steps", "4", "--out", str(run), "--batch-size", "8",
                     "--no-progress"]) == 0
    capsys.readouterr()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"test_elbo", "test_nll_iwae", "test_k"} <= set(logged[-1])   # k = 10 while training
    assert cli.main(["eval", "vae", "--out", str(run)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"elbo", "nll_iwae", "k"} and scores["k"] == 100
    assert scores["elbo"] < 0 and 0 < scores["nll_iwae"] <= -scores["elbo"] + 1.0
    assert cli.main(["sample", "vae", "--out", str(run), "--n", "16"]) == 0
    assert (run / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["export", "vae", "--out", str(run), "--to", str(tmp_path / "w")]) == 0
    shipped = weights.load("vae", folder=tmp_path / "w")
    assert RECIPES["vae"].evaluate_model(shipped) == json.loads(
        (tmp_path / "w" / "vae.json").read_text())["metrics"] == scores


def test_bad_inputs_are_named():
    from segen_jax.recipes import likelihood_bounds
    with pytest.raises(TypeError, match="binarize: images must be a float array"):
        losses.binarize(jax.random.key(0), jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"reparameterize: mu and logvar must have the same "
                                         r"shape, got \(2, 3\) and \(2, 4\)"):
        reparameterize(jax.random.key(0), jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    model = VAE(4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"likelihood_bounds: images must have shape "
                                         r"\(N, 28, 28, 1\), got \(2, 28, 28\)"):
        likelihood_bounds(model, np.zeros((2, 28, 28)), k=2)
    elbo, bound = likelihood_bounds(model, np.zeros((3, 28, 28, 1)), k=np.int64(2))
    assert elbo.shape == bound.shape == (3,)

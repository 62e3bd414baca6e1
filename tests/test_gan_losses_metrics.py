"""Chapter 5's library so far: the GAN losses, the gradient penalty, the Fréchet distance and
mode coverage, against closed forms and constructed cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from segen_jax import losses, metrics


# --------------------------------------------------------------------------- Fréchet distance
def random_cov(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_closed_forms():
    # 1-D: (m1 − m2)² + (s1 − s2)²
    assert metrics.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # diagonal: Σ (mu differences)² + Σ (√a − √b)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    want = 1 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = metrics.frechet_distance(np.zeros(3), np.diag(a), np.array([1.0, 0, 0]), np.diag(b))
    assert got == pytest.approx(want, rel=1e-10)


@given(seed=st.integers(0, 10_000), d=st.integers(1, 12))
def test_frechet_distance_matches_sqrtm_and_is_symmetric(seed, d):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = random_cov(rng, d), random_cov(rng, d)
    root = scipy.linalg.sqrtm(c1 @ c2)
    want = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(root))
    got = metrics.frechet_distance(mu1, c1, mu2, c2)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-8)
    assert got == pytest.approx(metrics.frechet_distance(mu2, c2, mu1, c1), rel=1e-9, abs=1e-10)
    assert metrics.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_of_singular_covariances_is_real_and_finite():
    """Rank-deficient covariances (fewer samples than dimensions) are where sqrtm of the
    non-symmetric product leaves complex parts; the symmetric form does not."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 20)), rng.standard_normal((5, 20)) + 0.5
    value = metrics.frechet_distance(*metrics.gaussian_stats(x), *metrics.gaussian_stats(y))
    assert isinstance(value, float) and np.isfinite(value) and value > 0


def test_image_frechet_distance_is_small_for_one_distribution_and_grows_apart():
    from segen_jax import data
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    same = metrics.image_frechet_distance(train[:500], test[:500])
    noise = np.random.default_rng(0).uniform(size=(500, 28, 28, 1)).astype(np.float32)
    assert metrics.image_frechet_distance(train[:500], noise) > 5 * same > 0


def test_image_feature_stats_give_image_frechet_distance():
    from segen_jax import data, weights
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    classifier = weights.load("classifier")
    a = metrics.image_feature_stats(train[:300], classifier=classifier, batch_size=128)
    b = metrics.image_feature_stats(test[:200], classifier=classifier)
    assert a[0].shape == (128,) and a[1].shape == (128, 128)
    features = np.asarray(classifier.features(np.asarray(train[:300], np.float32)))
    np.testing.assert_allclose(a[0], features.mean(0), rtol=1e-5, atol=1e-6)
    a = metrics.image_feature_stats(train[:300], classifier=classifier)   # its batches of 500
    assert metrics.frechet_distance(*a, *b) == metrics.image_frechet_distance(
        train[:300], test[:200], classifier=classifier)


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.image_feature_stats(np.zeros((1, 28, 28, 1))),
     r"image_feature_stats: images must have shape \(n, 28, 28, 1\) with n >= 2, got \(1, 28"),
    (lambda: metrics.image_feature_stats(np.zeros((4, 28, 28, 1)), batch_size=0),
     r"image_feature_stats: batch_size must be an int >= 1, got 0"),
    (lambda: metrics.frechet_distance(np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2)),
     r"mu1 must be a vector \(d,\), got shape \(2, 2\)"),
    (lambda: metrics.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)),
     r"cov1 must have shape \(2, 2\), got \(3, 3\)"),
    (lambda: metrics.frechet_distance(np.zeros(2), [[1, 1], [0, 1]], np.zeros(2), np.eye(2)),
     r"cov1 must be symmetric"),
    (lambda: metrics.frechet_distance(np.zeros(2), np.eye(2), [np.nan, 0], np.eye(2)),
     r"mu2 holds NaN or inf"),
    (lambda: metrics.gaussian_stats(np.zeros((1, 3))), r"n >= 2, got \(1, 3\)"),
    (lambda: metrics.image_frechet_distance(np.zeros((4, 28, 28)), np.zeros((4, 28, 28, 1))),
     r"images_a must have shape \(n, 28, 28, 1\)"),
])
def test_frechet_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- mode coverage
def test_mode_coverage_counts_modes_and_quality():
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    sigma = 0.01
    samples = np.array([[0.0, 0.02], [0.0, -0.02],          # mode 0, within 3σ
                        [1.0, 0.029],                         # mode 1, within 3σ
                        [0.0, 1.031],                         # near mode 2 but beyond 3σ
                        [0.5, 0.5]])                          # between modes
    modes, quality = metrics.mode_coverage(samples, centers, sigma)
    assert modes == 2 and quality == pytest.approx(3 / 5)
    assert metrics.mode_coverage(centers, centers, sigma) == (4, 1.0)
    assert metrics.mode_coverage(np.zeros((0, 2)), centers, sigma) == (0, 0.0)


def test_mode_coverage_errors():
    with pytest.raises(ValueError, match=r"must share d"):
        metrics.mode_coverage(np.zeros((3, 3)), np.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError, match=r"sigma must be a finite number > 0, got 0"):
        metrics.mode_coverage(np.zeros((3, 2)), np.zeros((2, 2)), 0)
    with pytest.raises(TypeError, match=r"sigma must be a number, got bool"):
        metrics.mode_coverage(np.zeros((3, 2)), np.zeros((2, 2)), True)
    with pytest.raises(ValueError, match=r"samples hold NaN or inf"):
        metrics.mode_coverage(np.full((3, 2), np.nan), np.zeros((2, 2)), 0.1)


# --------------------------------------------------------------------------- GAN losses
def test_gan_losses_match_their_probability_forms():
    rng = np.random.default_rng(0)
    real, fake = jnp.asarray(rng.normal(size=64)), jnp.asarray(rng.normal(size=(64, 1)))
    d_real, d_fake = jax.nn.sigmoid(real), jax.nn.sigmoid(fake)
    np.testing.assert_allclose(losses.discriminator_loss(real, fake),
                               -jnp.mean(jnp.log(d_real)) - jnp.mean(jnp.log(1 - d_fake)),
                               rtol=1e-5)
    np.testing.assert_allclose(losses.generator_loss_saturating(fake),
                               jnp.mean(jnp.log(1 - d_fake)), rtol=1e-5)
    np.testing.assert_allclose(losses.generator_loss_non_saturating(fake),
                               -jnp.mean(jnp.log(d_fake)), rtol=1e-5)
    np.testing.assert_allclose(losses.wasserstein_critic_loss(real, fake),
                               jnp.mean(fake) - jnp.mean(real), rtol=1e-6)
    np.testing.assert_allclose(losses.hinge_discriminator_loss(real, fake),
                               jnp.mean(jnp.maximum(0, 1 - real))
                               + jnp.mean(jnp.maximum(0, 1 + fake)), rtol=1e-6)
    assert float(losses.wasserstein_generator_loss(fake)) == pytest.approx(-float(fake.mean()))


def test_saturating_loss_vanishes_where_the_discriminator_is_confident():
    confident = jnp.full((8,), -10.0)        # D(G(z)) = σ(−10) ≈ 4.5e-5
    sat = jax.grad(losses.generator_loss_saturating)(confident)
    non_sat = jax.grad(losses.generator_loss_non_saturating)(confident)
    assert float(jnp.abs(sat).max()) < 1e-5 and float(jnp.abs(non_sat).min()) > 0.1
    assert np.isfinite(float(losses.discriminator_loss(jnp.full(4, 100.0), jnp.full(4, -100.0))))


def test_gradient_penalty_is_zero_for_a_unit_lipschitz_linear_critic():
    key = jax.random.key(0)
    real = jax.random.normal(jax.random.key(1), (16, 4, 4, 1))
    fake = jax.random.normal(jax.random.key(2), (16, 4, 4, 1))
    w = jax.random.normal(jax.random.key(3), (16,))
    unit = lambda x: x.reshape(x.shape[0], -1) @ (w / jnp.linalg.norm(w))
    double = lambda x: x.reshape(x.shape[0], -1) @ (2 * w / jnp.linalg.norm(w))
    assert float(losses.gradient_penalty(unit, real, fake, key)) < 1e-10
    assert float(losses.gradient_penalty(double, real, fake, key)) == pytest.approx(1.0, rel=1e-5)
    # a non-linear critic: positive, and the interpolation weights are uniform per example
    square = lambda x: jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
    assert float(losses.gradient_penalty(square, real, fake, key)) > 0.1


def test_gradient_penalty_draws_one_uniform_weight_per_example():
    """With real = 1 and fake = 0, x̂ = ε, and a critic f(x) = Σx²/2 has ∇f = x̂, so the
    per-example norms reveal ε: uniform on [0, 1], one value per example."""
    n, size = 4000, 9
    real, fake = jnp.ones((n, size)), jnp.zeros((n, size))
    critic = lambda x: 0.5 * jnp.sum(x ** 2, axis=1)
    eps_values = jax.jit(lambda key: jax.grad(lambda x: jnp.sum(critic(x)))(
        jax.random.uniform(key, (n, 1)) * real))(jax.random.key(5))
    seen = np.asarray(eps_values)
    assert np.allclose(seen, seen[:, :1])                       # one ε per example
    penalty = float(losses.gradient_penalty(critic, real, fake, jax.random.key(5)))
    eps = seen[:, 0]
    assert penalty == pytest.approx(np.mean((3 * eps - 1) ** 2), rel=1e-4)   # ‖ε·1_9‖ = 3ε
    assert abs(eps.mean() - 0.5) < 0.02 and abs(eps.var() - 1 / 12) < 0.01


def test_r1_penalty_is_the_squared_weight_norm_of_a_linear_critic():
    real = jax.random.normal(jax.random.key(1), (16, 4, 4, 1))
    w = jax.random.normal(jax.random.key(3), (16,))
    linear = lambda x: x.reshape(x.shape[0], -1) @ w + 0.3
    assert float(losses.r1_penalty(linear, real)) == pytest.approx(float(w @ w), rel=1e-5)
    # D(x) = Σx²/2 has ∇D = x: R1 is the mean squared norm of the real examples themselves
    half_square = lambda x: 0.5 * jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
    expected = float(jnp.mean(jnp.sum(real.reshape(16, -1) ** 2, axis=1)))
    assert float(losses.r1_penalty(half_square, real)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.r1_penalty(lambda x: jnp.zeros(x.shape[0]), real)) == 0.0


@pytest.mark.parametrize("call, error, match", [
    (lambda: losses.discriminator_loss(jnp.zeros((4, 2)), jnp.zeros(4)), ValueError,
     r"real_logits must be one score per example"),
    (lambda: losses.gradient_penalty(3, jnp.zeros((2, 3)), jnp.zeros((2, 3)), None), TypeError,
     r"critic must be callable"),
    (lambda: losses.gradient_penalty(lambda x: x, jnp.zeros((2, 3)), jnp.zeros((3, 3)), None),
     ValueError, r"real and fake must have the same shape"),
    (lambda: losses.gradient_penalty(lambda x: jnp.mean(x), jnp.zeros((2, 3)),
                                     jnp.zeros((2, 3)), jax.random.key(0)),
     ValueError, r"gradient_penalty: critic_output must be one score per example"),
    (lambda: losses.r1_penalty("D", jnp.zeros((2, 3))), TypeError, r"r1_penalty: critic must"),
    (lambda: losses.r1_penalty(lambda x: x[:, 0], jnp.zeros(3)), ValueError,
     r"r1_penalty: real must be a batch \(N, ...\), got \(3,\)"),
    (lambda: losses.r1_penalty(lambda x: x[:, 0], jnp.zeros((2, 3), jnp.int32)), TypeError,
     r"r1_penalty: real must be a float array, got dtype int32"),
    (lambda: losses.r1_penalty(lambda x: x, jnp.zeros((2, 3))), ValueError,
     r"r1_penalty: critic_output must be one score per example"),
])
def test_gan_loss_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()

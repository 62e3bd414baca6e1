"""Each checker accepts the solution and answers each typical mistake with its own hint."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segen_jax import exercises
from solutions import ch00_jax_primer as sol


def verdict(capsys, check, fn):
    ok = check(fn)
    return ok, capsys.readouterr().out


def unsolved(*args):
    raise NotImplementedError


def test_log_softmax_solution_passes(capsys):
    ok, out = verdict(capsys, exercises.check_log_softmax, sol.stable_log_softmax)
    assert ok and out.startswith("✓ correct")


@pytest.mark.parametrize("fn, hint", [
    (unsolved, "not implemented yet"),
    (lambda z: jnp.log(jnp.exp(z) / jnp.exp(z).sum(-1, keepdims=True)), "exp(1000) overflows"),
    (lambda z: z - jnp.log(jnp.exp(z).sum(0, keepdims=True)), "axis 0"),
    (lambda z: jax.nn.softmax(z), "that is softmax itself"),
    (lambda z: z - jnp.log(jnp.exp(z).sum(-1)), "keepdims=True"),
    (lambda z: z - z.max(-1, keepdims=True) - jnp.log(jnp.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) + 1.0,
     "the values differ"),
    (lambda z: z - jnp.log(jnp.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)),
     "values differ"),
    (lambda z: sol.stable_log_softmax(z) if float(z.max()) < 1e9 else z, "not under jax.jit"),
])
def test_log_softmax_mistakes_get_their_hint(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_log_softmax, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out


def test_per_example_grads_solution_passes(capsys):
    ok, out = verdict(capsys, exercises.check_per_example_grads, sol.per_example_grads)
    assert ok and out.startswith("✓ correct")


def batch_loss(params, x, y):
    logits = x @ params["w"] + params["b"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])


@pytest.mark.parametrize("fn, hint", [
    (unsolved, "not implemented yet"),
    (lambda p, x, y: jax.grad(batch_loss)(p, x, y), "you differentiated the batch loss"),
    (lambda p, x, y: jax.tree.map(lambda g: g / len(y), sol.per_example_grads(p, x, y)),
     "too small"),
    (lambda p, x, y: jax.tree.map(lambda g: -g, sol.per_example_grads(p, x, y)), "sign is flipped"),
    (lambda p, x, y: jax.tree.map(lambda g: 2 * g, sol.per_example_grads(p, x, y)), "wrong values"),
    (lambda p, x, y: [1, 2], "return a dict"),
    (lambda p, x, y: {"w": jnp.zeros((1, 2)), "b": jnp.zeros(3)}, "expected shapes"),
])
def test_per_example_grads_mistakes_get_their_hint(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_per_example_grads, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out


# ---- chapter 1 ---------------------------------------------------------------------------------
from solutions import ch01_convolution as sol1  # noqa: E402


@pytest.mark.parametrize("check, fn", [
    (exercises.check_output_size, sol1.output_size),
    (exercises.check_im2col, sol1.im2col),
    (exercises.check_conv_weight_grad, sol1.conv_weight_grad),
])
def test_chapter1_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


@pytest.mark.parametrize("fn, hint", [
    (lambda n, k, s, p, d: (n + 2 * p - k) // s + 1, "dilation d spreads"),
    (lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1, "*both* sides"),
    (lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s, "+ 1"),
    (lambda n, k, s, p, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1, "round the number of strides down"),
    (lambda n, k, s, p, d: n, "the output has"),
    (unsolved, "not implemented yet"),
])
def test_output_size_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_output_size, fn)
    assert not ok and hint in out, out


def im2col_channel_first(x, k):
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    return jnp.stack([x[p:p + h, q:q + w, c] for c in range(x.shape[2])
                      for p in range(k) for q in range(k)], axis=-1)


@pytest.mark.parametrize("fn, hint", [
    (im2col_channel_first, "wrong order"),
    (lambda x, k: x, "expected patches of shape"),
    (lambda x, k: sol1.im2col(x, k) + 1.0, "must hold x[i:i+k, j:j+k, :]"),
    (unsolved, "not implemented yet"),
])
def test_im2col_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_im2col, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda x, dy: sol1.conv_weight_grad(x, dy)[::-1, ::-1], "flipped"),
    (lambda x, dy: jnp.zeros((2, 2)), "shape of w"),
    (lambda x, dy: 2 * sol1.conv_weight_grad(x, dy), "wrong values"),
    (unsolved, "not implemented yet"),
])
def test_conv_weight_grad_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_conv_weight_grad, fn)
    assert not ok and hint in out, out


# ---- chapter 2 ---------------------------------------------------------------------------------
from solutions import ch02_pooling as sol2  # noqa: E402


def test_avg_pool_counts_are_the_librarys_divisor():
    """The checker's reference (and the solution) is the divisor avg_pool2d really uses."""
    from segen_jax.ops.pool import _counts
    for n, k, s, p in [(5, 3, 1, 1), (7, 3, 2, 1), (28, 3, 2, 1), (4, 4, 1, 3), (9, 4, 3, 2)]:
        out = (n + 2 * p - k) // s + 1
        assert list(sol2.avg_pool_counts(n, k, s, p)) == list(_counts(n, k, s, p, out))


@pytest.mark.parametrize("check, fn", [
    (exercises.check_max_pool, sol2.max_pool),
    (exercises.check_max_pool_backward, sol2.max_pool_backward),
    (exercises.check_avg_pool_counts, sol2.avg_pool_counts),
])
def test_chapter2_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


def windows_reduce(reduce):
    def pool(x, k):
        h, w = x.shape[0] // k, x.shape[1] // k
        return reduce(x[:h * k, :w * k].reshape(h, k, w, k), axis=(1, 3))
    return pool


@pytest.mark.parametrize("fn, hint", [
    (lambda x, k: np.maximum.reduce([x[p:x.shape[0] - k + 1 + p, q:x.shape[1] - k + 1 + q]
                                     for p in range(k) for q in range(k)]), "that is stride 1"),
    (lambda x, k: np.maximum.reduce([np.pad(x, ((0, -x.shape[0] % k), (0, -x.shape[1] % k)),
                                            constant_values=-np.inf)[p::k, q::k]
                                     for p in range(k) for q in range(k)]), "are dropped"),
    (windows_reduce(np.mean), "that is average pooling"),
    (windows_reduce(np.min), "the minimum"),
    (lambda x, k: sol2.max_pool(x, k) + 1, "wrong values"),
    (unsolved, "not implemented yet"),
])
def test_max_pool_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_max_pool, fn)
    assert not ok and hint in out, out


def max_pool_backward_by(pick):
    def backward(x, dy, k):
        dx = np.zeros(x.shape, np.float32)
        for i in range(dy.shape[0]):
            for j in range(dy.shape[1]):
                window = x[i * k:(i + 1) * k, j * k:(j + 1) * k].ravel()
                for t, share in pick(window):
                    dx[i * k + t // k, j * k + t % k] += share * dy[i, j]
        return dx
    return backward


@pytest.mark.parametrize("fn, hint", [
    (max_pool_backward_by(lambda w: [(t, 1 / np.sum(w == w.max()))
                                     for t in np.flatnonzero(w == w.max())]), "split dy"),
    (max_pool_backward_by(lambda w: [(t, 1.0) for t in np.flatnonzero(w == w.max())]),
     "counted twice"),
    (max_pool_backward_by(lambda w: [(np.flatnonzero(w == w.max())[-1], 1.0)]), "the last"),
    (max_pool_backward_by(lambda w: [(t, 1 / w.size) for t in range(w.size)]),
     "gradient of average pooling"),
    (lambda x, dy, k: dy, "dx has the shape of x"),
    (lambda x, dy, k: -sol2.max_pool_backward(x, dy, k), "wrong values"),
    (unsolved, "not implemented yet"),
])
def test_max_pool_backward_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_max_pool_backward, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda n, k, s, p: np.full((n + 2 * p - k) // s + 1, k), "counts the padding"),
    (lambda n, k, s, p: np.full((n + 2 * p - k) // s + 1, k * k), "one axis only"),
    (lambda n, k, s, p: sol2.avg_pool_counts(n, k, s, p)[:-1], "windows, got"),
    (lambda n, k, s, p: np.minimum(np.arange((n + 2 * p - k) // s + 1) * s + k, n), "expected"),
    (unsolved, "not implemented yet"),
])
def test_avg_pool_counts_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_avg_pool_counts, fn)
    assert not ok and hint in out, out


# ---- chapter 3 ---------------------------------------------------------------------------------
from solutions import ch03_fcn as sol3  # noqa: E402


@pytest.mark.parametrize("check, fn", [
    (exercises.check_conv_matrix, sol3.conv_matrix),
    (exercises.check_transposed_output_size, sol3.transposed_output_size),
    (exercises.check_bilinear_tent, sol3.bilinear_tent),
])
def test_chapter3_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


def test_the_tent_is_the_librarys_bilinear_kernel():
    from segen_jax.ops import bilinear_kernel
    for f in (1, 2, 3, 4, 7):
        np.testing.assert_allclose(bilinear_kernel(f, 1)[:, :, 0, 0],
                                   np.outer(sol3.bilinear_tent(f), sol3.bilinear_tent(f)),
                                   atol=1e-6)


@pytest.mark.parametrize("fn, hint", [
    (lambda w, n: sol3.conv_matrix(w, n).T, "is Cᵀ's"),
    (lambda w, n: sol3.conv_matrix(w[::-1, ::-1], n), "true convolution"),
    (lambda w, n: np.zeros((2, 2)), "C has shape"),
    (lambda w, n: 2 * sol3.conv_matrix(w, n), "wrong entries"),
    (unsolved, "not implemented yet"),
])
def test_conv_matrix_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_conv_matrix, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda n, k, s, p, o: (n - 1) * s - 2 * p + k, "output_padding adds"),
    (lambda n, k, s, p, o: (n - 1) * s + k + o, "subtract 2p"),
    (lambda n, k, s, p, o: (n + 2 * p - k) // s + 1, "that is conv2d's output size"),
    (lambda n, k, s, p, o: n * s, "expected"),
    (unsolved, "not implemented yet"),
])
def test_transposed_output_size_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_transposed_output_size, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda f: sol3.bilinear_tent(f) / sol3.bilinear_tent(f).sum(), "normalised to sum 1"),
    (lambda f: np.ones(2 * f), "taps"),
    (lambda f: np.roll(sol3.bilinear_tent(f), 1), "expected"),
    (unsolved, "not implemented yet"),
])
def test_bilinear_tent_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_bilinear_tent, fn)
    assert not ok and hint in out, out


# ---- chapter 4 ---------------------------------------------------------------------------------
from solutions import ch04_deeplab as sol4  # noqa: E402


@pytest.mark.parametrize("check, fn", [
    (exercises.check_dilate_kernel, sol4.dilate_kernel),
    (exercises.check_atrous_support, sol4.atrous_support),
    (exercises.check_mean_field_step, sol4.mean_field_step),
])
def test_chapter4_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


def _spread(w, r):
    """The mistake of spreading k taps over k·r pixels."""
    k = w.shape[0]
    out = np.zeros((k * r, k * r), np.float32)
    out[::r, ::r] = w
    return out


@pytest.mark.parametrize("fn, hint", [
    (_spread, "is k·r on each side"),
    (lambda w, r: np.zeros((1, 1)), "the kernel is"),
    (lambda w, r: sol4.dilate_kernel(w[::-1, ::-1], r), "taps are misplaced"),
    (unsolved, "not implemented yet"),
])
def test_dilate_kernel_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_dilate_kernel, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda rates: np.ones(1 + 2 * sum(rates), bool), "add tap offsets"),
    (lambda rates: np.ones(3, bool), "the field spans"),
    (lambda rates: ~sol4.atrous_support(rates), "wrong offsets"),
    (unsolved, "not implemented yet"),
])
def test_atrous_support_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_atrous_support, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda u, k, q: jax.nn.softmax(-u - k @ q, -1), "wrong sign"),
    (lambda u, k, q: jax.nn.softmax(-u, -1), "message Σ_j k_ij Q_j(l) is missing"),
    (lambda u, k, q: jax.nn.softmax(-u + k @ q, 0), "rows do not sum to 1"),
    (lambda u, k, q: jax.nn.softmax(-u + 0.5 * k @ q, -1), "not the mean-field update"),
    (lambda u, k, q: (-u + k @ q)[:2], "one row of"),
    (unsolved, "not implemented yet"),
])
def test_mean_field_step_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_mean_field_step, fn)
    assert not ok and hint in out, out


# ---- chapter 5 ---------------------------------------------------------------------------------
from solutions import ch05_gan as sol5  # noqa: E402


@pytest.mark.parametrize("check, fn", [
    (exercises.check_optimal_value, sol5.optimal_value),
    (exercises.check_non_saturating_loss, sol5.non_saturating_loss),
    (exercises.check_gradient_penalty, sol5.gradient_penalty),
    (exercises.check_frechet_1d, sol5.frechet_1d),
])
def test_chapter5_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


def _naive_value(p, q, dx):
    """The mistake of taking log 0 where a density vanishes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = p / (p + q)
        return float(np.sum(p * np.log(d) + q * np.log(1 - d)) * dx)


@pytest.mark.parametrize("fn, hint", [
    (_naive_value, "0·log(…) = 0"),
    (lambda p, q, dx: float(np.sum(p * np.log(0.5) + q * np.log(0.5)) * dx), "expected"),
    (lambda p, q, dx: -np.log(4), "expected"),
    (lambda p, q, dx: sol5.optimal_value(p, q, dx) / 2, "C(G) = −log 4"),
    (lambda p, q, dx: float("nan"), "not a finite number"),
    (lambda p, q, dx: p * dx, "return one number"),
    (lambda p, q, dx: None, "return one number"),
    (unsolved, "not implemented yet"),
])
def test_optimal_value_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_optimal_value, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda l: jnp.mean(-jnp.log(jax.nn.sigmoid(l))), "rounds to 0"),
    (lambda l: jnp.mean(jax.nn.softplus(l)), "expected"),
    (lambda l: jnp.mean(jnp.where(l < -100, -l, -jnp.log(jax.nn.sigmoid(l)))), "gradient"),
    (lambda l: float(np.mean(np.logaddexp(0, -np.asarray(l)))), "Write it with jax.numpy"),
    (lambda l: jax.nn.softplus(-l), "return one number"),
    (unsolved, "not implemented yet"),
])
def test_non_saturating_loss_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_non_saturating_loss, fn)
    assert not ok and hint in out, out


def _squared_norm_penalty(critic, real, fake, eps):
    mixed = eps * real + (1 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(mixed)
    return jnp.mean(jnp.sum(grads ** 2, axis=1))


@pytest.mark.parametrize("fn, hint", [
    (_squared_norm_penalty, "unit-norm weight"),
    (lambda c, r, f, e: sol5.gradient_penalty(c, f, r, e), "eps weighs the real example"),
    (lambda c, r, f, e: sol5.gradient_penalty(c, r, f, jnp.full_like(e, 0.5)), "expected"),
    (lambda c, r, f, e: float("nan"), "not a finite number"),
    (lambda c, r, f, e: jnp.zeros(6), "return one number"),
    (unsolved, "not implemented yet"),
])
def test_gradient_penalty_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_gradient_penalty, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1 ** 2 - s2 ** 2) ** 2, "compares variances"),
    (lambda m1, s1, m2, s2: abs(m1 - m2) + abs(s1 - s2), "expected"),
    (lambda m1, s1, m2, s2: float("nan"), "not a finite number"),
    (lambda m1, s1, m2, s2: None, "return one number"),
    (unsolved, "not implemented yet"),
])
def test_frechet_1d_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_frechet_1d, fn)
    assert not ok and hint in out, out


# ---- chapter 6 ---------------------------------------------------------------------------------
from solutions import ch06_vae as sol6  # noqa: E402


@pytest.mark.parametrize("check, fn", [
    (exercises.check_gaussian_kl, sol6.gaussian_kl),
    (exercises.check_reparameterize, sol6.reparameterize),
    (exercises.check_log_mean_exp, sol6.log_mean_exp),
])
def test_chapter6_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


def _kl_terms(mu, lv):
    return jnp.exp(lv) + mu ** 2 - 1 - lv


@pytest.mark.parametrize("fn, hint", [
    (lambda m, v: 0.5 * jnp.sum(jnp.exp(v / 2) + m ** 2 - 1 - v, -1), "exp(logvar / 2) is σ"),
    (lambda m, v: 0.5 * jnp.sum(jnp.exp(v / 2) + m ** 2 - 1 - v / 2, -1), "uses σ"),
    (lambda m, v: jnp.sum(_kl_terms(m, v), -1), "factor ½"),
    (lambda m, v: 0.5 * jnp.sum(jnp.exp(v) + m ** 2 - 1 + v, -1), "sign of the log term"),
    (lambda m, v: 0.5 * jnp.mean(_kl_terms(m, v), -1), "averaged over the latent axis"),
    (lambda m, v: 0.5 * jnp.sum(jnp.exp(2 * v) + m ** 2 - 1 - 2 * v, -1), "log-variance"),
    (lambda m, v: 0.5 * jnp.sum(v ** 2 + m ** 2 - 1 - jnp.log(v ** 2), -1), "not finite"),
    (lambda m, v: 0.5 * jnp.sum(jnp.exp(v) + m ** 2 - v, -1), "must be 0"),
    (lambda m, v: 0.5 * jnp.sum(_kl_terms(m, v)), "batch too"),
    (lambda m, v: 0.5 * jnp.mean(jnp.sum(_kl_terms(m, v), -1)), "batch too"),
    (lambda m, v: 0.5 * _kl_terms(m, v), "per-dimension terms"),
    (lambda m, v: 0.5 * jnp.sum(_kl_terms(m, v), 0), "reduced over the batch (axis 0)"),
    (lambda m, v: 0.5 * jnp.sum(_kl_terms(m, v), 1), "last axis only"),
    (lambda m, v: jnp.zeros(7), "one KL per example"),
    (lambda m, v: jnp.full(m.shape[:-1], jnp.nan), "not finite"),
    (lambda m, v: None, "got None"),
    (lambda m, v: "kl", "got str"),
    (unsolved, "not implemented yet"),
])
def test_gaussian_kl_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_gaussian_kl, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out, out


def _sigma_times(eps_of):
    return lambda k, m, v: m + jnp.exp(v / 2) * eps_of(k, m)


_normal = lambda k, m: jax.random.normal(k, m.shape)


@pytest.mark.parametrize("fn, hint", [
    (lambda k, m, v: m + jnp.exp(v) * _normal(k, m), "off by a square"),
    (lambda k, m, v: m + jnp.exp(v / 2) * _normal(k, m) * 2, "the variance of z"),
    (lambda k, m, v: sol6.reparameterize(k, m, v) + 3 * (v - jax.lax.stop_gradient(v)),
     "dz/dlogvar should be"),
    (lambda k, m, v: sol6.reparameterize(k, m, v) + (m - jax.lax.stop_gradient(m)),
     "dz/dmu should be 1"),
    (lambda k, m, v: m + jnp.sqrt(v) * _normal(k, m), "square root"),
    (_sigma_times(lambda k, m: np.random.standard_normal(np.shape(m))), "same key gave two"),
    (_sigma_times(lambda k, m: np.random.default_rng(0).standard_normal(np.shape(m))),
     "different keys gave the same z"),
    (_sigma_times(lambda k, m: jax.random.normal(jax.random.key(0), m.shape)),
     "different keys gave the same z"),
    (lambda k, m, v: _normal(k, m), "returned eps alone"),
    (_sigma_times(lambda k, m: jax.random.normal(k, (3,))), "identical"),
    (lambda k, m, v: 2 * m + jnp.exp(v / 2) * _normal(k, m), "the mean of z"),
    (lambda k, m, v: m + jnp.exp(v / 4) * _normal(k, m), "the variance of z"),
    (lambda k, m, v: m + jax.lax.stop_gradient(jnp.exp(v / 2)) * _normal(k, m),
     "dz/dlogvar is 0"),
    (lambda k, m, v: jax.lax.stop_gradient(m + jnp.exp(v / 2) * _normal(k, m)), "dz/dmu is 0"),
    (lambda k, m, v: jnp.asarray(np.asarray(m) + np.exp(np.asarray(v) / 2)
                                 * np.asarray(_normal(k, m))), "jax.grad"),
    (lambda k, m, v: jnp.zeros(5), "mu's shape"),
    (lambda k, m, v: jnp.full(m.shape, jnp.nan), "not finite"),
    (lambda k, m, v: None, "got None"),
    (unsolved, "not implemented yet"),
])
def test_reparameterize_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_reparameterize, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out, out


def _global_shift(lw):
    m = jnp.max(lw)
    return m + jnp.log(jnp.mean(jnp.exp(lw - m), 0))


@pytest.mark.parametrize("fn, hint", [
    (lambda lw: jax.nn.logsumexp(lw, 0), "log-sum-exp"),
    (lambda lw: jnp.log(jnp.mean(jnp.exp(lw), 0)), "overflows"),
    (_global_shift, "each column"),
    (lambda lw: jax.nn.logsumexp(lw, 1) - jnp.log(lw.shape[1]), "wrong axis"),
    (lambda lw: jnp.mean(lw, 0), "Jensen"),
    (lambda lw: jnp.log(jnp.mean(jnp.exp(lw - lw.max(0)), 0)), "did not add it back"),
    (lambda lw: jnp.max(lw, 0), "expected"),
    (lambda lw: jnp.log(jnp.mean(jnp.exp(jnp.clip(lw, -80, 80)), 0)), "finite but wrong"),
    (lambda lw: lw - jnp.log(lw.shape[0]), "reduce over axis 0"),
    (lambda lw: jnp.full(lw.shape[1:], jnp.nan), "not finite"),
    (lambda lw: None, "got None"),
    (unsolved, "not implemented yet"),
])
def test_log_mean_exp_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_log_mean_exp, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out, out

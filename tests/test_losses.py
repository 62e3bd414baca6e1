"""Segmentation losses against loop-and-formula references, optax, and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from segen_jax.losses import dice_loss, pixel_cross_entropy


@st.composite
def batches(draw):
    n, h, w, k = (draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)),
                  draw(st.integers(2, 5)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = rng.standard_normal((n, h, w, k)).astype(np.float32) * 3
    labels = rng.integers(0, k, (n, h, w))
    ignored = rng.random((n, h, w)) < draw(st.sampled_from([0.0, 0.3]))
    labels = np.where(ignored, 255, labels).astype(np.int32)
    weights = rng.uniform(0.2, 3.0, k).astype(np.float32)
    return logits, labels, weights


def reference_cross_entropy(logits, labels, weights, ignore):
    total = norm = 0.0
    for idx in np.ndindex(labels.shape):
        t = labels[idx]
        if t == ignore:
            continue
        z = logits[idx].astype(np.float64)
        log_p = z - np.log(np.exp(z - z.max()).sum()) - z.max()
        total += weights[t] * -log_p[t]
        norm += weights[t]
    return total / norm if norm else 0.0


@given(batches())
def test_pixel_cross_entropy_is_the_weighted_mean_over_kept_pixels(batch):
    logits, labels, weights = batch
    got = pixel_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), ignore_index=255,
                              class_weights=weights)
    assert float(got) == pytest.approx(reference_cross_entropy(logits, labels, weights, 255),
                                       rel=1e-5, abs=1e-6)
    unweighted = pixel_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), ignore_index=255)
    assert float(unweighted) == pytest.approx(
        reference_cross_entropy(logits, labels, np.ones_like(weights), 255), rel=1e-5, abs=1e-6)


def test_without_ignore_it_is_optax_mean_cross_entropy():
    logits = jax.random.normal(jax.random.key(0), (2, 5, 4, 3))
    labels = jax.random.randint(jax.random.key(1), (2, 5, 4), 0, 3)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    assert float(pixel_cross_entropy(logits, labels)) == pytest.approx(float(want), rel=1e-6)


def reference_dice(logits, labels, ignore, eps):
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    keep = labels != ignore
    scores = []
    for c in range(logits.shape[-1]):
        pc, yc = p[..., c][keep], (labels[keep] == c).astype(np.float64)
        scores.append((2 * (pc * yc).sum() + eps) / (pc.sum() + yc.sum() + eps))
    return 1 - np.mean(scores)


@given(batches(), st.sampled_from([1e-6, 1.0]))
def test_dice_loss_matches_the_formula(batch, eps):
    logits, labels, _ = batch
    got = dice_loss(jnp.asarray(logits), jnp.asarray(labels), ignore_index=255, eps=eps)
    assert float(got) == pytest.approx(reference_dice(logits, labels, 255, eps), rel=1e-4,
                                       abs=1e-5)


def test_perfect_predictions_give_zero_dice_loss_and_small_cross_entropy():
    labels = jnp.array([[[0, 1], [2, 1]]])
    logits = 50.0 * jax.nn.one_hot(labels, 3)
    assert float(dice_loss(logits, labels)) == pytest.approx(0.0, abs=1e-6)
    assert float(pixel_cross_entropy(logits, labels)) < 1e-6


def test_gradients_are_finite_and_ignored_pixels_get_none():
    logits = jax.random.normal(jax.random.key(2), (1, 3, 3, 4))
    labels = jnp.array([[[0, 1, 255], [2, 255, 3], [1, 1, 0]]])
    for loss in (pixel_cross_entropy, dice_loss):
        grad = jax.grad(lambda z: loss(z, labels, ignore_index=255))(logits)
        assert np.all(np.isfinite(grad))
        np.testing.assert_array_equal(grad[0, 0, 2], 0.0)
        np.testing.assert_array_equal(grad[0, 1, 1], 0.0)


def test_losses_jit():
    logits = jax.random.normal(jax.random.key(3), (2, 4, 4, 3))
    labels = jax.random.randint(jax.random.key(4), (2, 4, 4), 0, 3)
    for loss in (pixel_cross_entropy, dice_loss):
        assert float(jax.jit(loss)(logits, labels)) == pytest.approx(float(loss(logits, labels)),
                                                                     rel=1e-6)


L, Y = jnp.zeros((1, 2, 2, 3)), jnp.zeros((1, 2, 2), jnp.int32)


@pytest.mark.parametrize("call, error, message", [
    (lambda: pixel_cross_entropy(L, Y.at[0, 0, 0].set(3)), ValueError,
     r"pixel_cross_entropy: labels hold \[3\] outside \[0, 3\) \(K = 3 classes"),
    (lambda: dice_loss(L, Y.at[0, 0, 0].set(-1), ignore_index=255), ValueError,
     r"dice_loss: labels hold \[-1\] outside \[0, 3\) or ignore_index = 255"),
    (lambda: pixel_cross_entropy(L, Y[0]), ValueError,
     r"labels must have shape \(N, H, W\) = \(1, 2, 2\)"),
    (lambda: pixel_cross_entropy(L[0], Y), ValueError, r"logits must have shape \(N, H, W, K\)"),
    (lambda: pixel_cross_entropy(L, Y.astype(jnp.float32)), TypeError,
     r"labels must hold integer class indices"),
    (lambda: pixel_cross_entropy(L, Y, class_weights=[1.0, 2.0]), ValueError,
     r"class_weights must have shape \(K,\) = \(3,\), got shape \(2,\)"),
    (lambda: pixel_cross_entropy(L, Y, class_weights=[1.0, -2.0, 1.0]), ValueError,
     r"class_weights must be finite and >= 0"),
    (lambda: dice_loss(L, Y, eps=0), ValueError, r"dice_loss: eps must be a number > 0, got 0"),
    (lambda: dice_loss(L.astype(jnp.int32), Y), TypeError, r"logits must be a float array"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()

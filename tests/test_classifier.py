"""The small CNN classifier: shapes, augmentation, and the accuracy it promises."""
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from segen_jax.models.classifier import Classifier, random_shift


def test_shapes_and_parameter_count():
    model = Classifier(rngs=nnx.Rngs(0))
    x = jnp.zeros((3, 28, 28, 1))
    assert model(x).shape == (3, 10)
    assert model.features(x).shape == (3, 128)
    n = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    # conv: 9·1·16+16, 9·16·16+16, 9·16·32+32, 9·32·32+32; dense: 1568·128+128, 128·10+10
    assert n == 160 + 2320 + 4640 + 9248 + 200832 + 1290 == 218490


@pytest.mark.parametrize("pool", ["avg", "stride"])
def test_every_pool_keeps_the_shapes_and_parameters(pool):
    model = Classifier(pool=pool, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
    assert model(x).shape == (2, 10)
    n = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert n == 218490
    # same weights, another pool: other logits (the pool is really used)
    maxpool = Classifier(pool="max", rngs=nnx.Rngs(0))
    assert not np.allclose(model(x), maxpool(x), atol=1e-4)


def test_feature_map_is_the_trunk_of_features_at_any_size():
    model = Classifier(rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(3), (2, 28, 28, 1))
    fmap = model.feature_map(x)
    assert fmap.shape == (2, 7, 7, 32)
    np.testing.assert_allclose(model.features(x),
                               jax.nn.relu(model.hidden(fmap.reshape(2, -1))), atol=1e-6)
    assert model.feature_map(jnp.zeros((1, 64, 48, 1))).shape == (1, 16, 12, 32)


def test_bad_input_shape_is_named():
    model = Classifier(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 28, 28, 1\), got \(28, 28\)"):
        model(jnp.zeros((28, 28)))
    with pytest.raises(ValueError, match="image_size must be divisible by 4, got 30"):
        Classifier(image_size=30, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"pool must be one of \['avg', 'max', 'stride'\], got 'min'"):
        Classifier(pool="min", rngs=nnx.Rngs(0))


def test_random_shift_moves_each_image_by_an_integer_offset():
    images = jax.random.uniform(jax.random.key(0), (16, 12, 12, 2))
    images = images.at[:, :2].set(0).at[:, -2:].set(0).at[:, :, :2].set(0).at[:, :, -2:].set(0)
    shifted = np.asarray(random_shift(jax.random.key(1), images, 2))
    offsets = set()
    for original, moved in zip(np.asarray(images), shifted):
        # Content away from the border is only moved, so some (dy, dx) in [-2, 2]² matches.
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(np.roll(original, (dy, dx), axis=(0, 1)), moved)]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 3  # offsets differ between images


def test_classifier_reaches_98_percent_on_shipped_mnist():
    """The recipe behind `segen-jax train classifier`: >= 98 % test accuracy in its default run."""
    from segen_jax.recipes import RECIPES
    from segen_jax.train import train

    recipe = RECIPES["classifier"]
    steps, batch_size, lr = (recipe.defaults[k] for k in ("steps", "batch_size", "lr"))
    graphdef, state, step = recipe.build(0, lr, steps)
    start = time.perf_counter()
    state, history = train(step, state, recipe.batches(batch_size, 0), steps=steps,
                           log_every=100, progress=False)
    seconds = time.perf_counter() - start
    accuracy = recipe.evaluate(graphdef, state)["accuracy"]
    print(f"classifier: test accuracy {accuracy:.4f} after {steps} steps in {seconds:.0f} s")
    assert accuracy >= 0.98

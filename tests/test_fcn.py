"""FCN models: shapes, the skip architecture's initial equivalences, input-size errors, and that
a few steps of training lower the loss."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from segen_jax.losses import pixel_cross_entropy
from segen_jax.models.fcn import FCN, ConvTranspose, TinyFCN
from segen_jax.ops import bilinear_upsample, max_pool2d


def n_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_maps_images_to_per_pixel_scores(variant):
    model = FCN(11, variant, rngs=nnx.Rngs(0))
    for size in ((64, 64), (32, 96)):
        assert model(jnp.zeros((2, *size, 1))).shape == (2, *size, 11)
    assert model.output_stride == int(variant[:-1])


def coarse_score(model, x):
    """The stride-32 score map, through the model's own layers."""
    pools = []
    for block in model.blocks:
        for conv in block:
            x = jax.nn.relu(conv(x))
        x = max_pool2d(x, 2)
        pools.append(x)
    return model.score(jax.nn.relu(model.fc7(jax.nn.relu(model.fc6(x))))), pools


@pytest.mark.parametrize("variant", ["16s", "8s"])
def test_fresh_skip_layers_add_nothing_until_trained(variant):
    """score_pool* start at zero, so a fresh FCN-16s is bilinear ×16 of up×2(score) and a fresh
    8s is bilinear ×8 of up×2(up×2(score)); the skips only add what training teaches them."""
    model = FCN(11, variant, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(0), (2, 64, 96, 1))
    score, pools = coarse_score(model, x)
    assert float(jnp.abs(model.score_pool4(pools[3])).max()) == 0.0
    up = model.up16(score) if variant == "16s" else model.up8(model.up16(score))
    np.testing.assert_allclose(model(x), bilinear_upsample(up, model.output_stride), atol=1e-6)
    # the skip is wired in: a non-zero score_pool4 changes the output
    model.score_pool4.bias[...] = jnp.ones(11)
    assert float(jnp.abs(model(x) - bilinear_upsample(up, model.output_stride)).max()) > 0.5


def test_bilinear_conv_transpose_layer_upsamples():
    layer = ConvTranspose(3, 3, 4, stride=2, padding=1, init="bilinear", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 3))
    np.testing.assert_allclose(layer(x)[:, 2:-2, 2:-2], bilinear_upsample(x, 2)[:, 2:-2, 2:-2],
                               atol=1e-5)


def test_tinyfcn_shapes_and_parameters():
    model = TinyFCN(11, rngs=nnx.Rngs(0))
    assert model(jnp.zeros((3, 28, 36, 1))).shape == (3, 28, 36, 11)
    # convs 1→16, 16→16, 16→32, 32→32, up 32→16 (4x4), fuse 32→16, classify 16→11
    assert n_params(model) == (9 * 16 + 16) + (9 * 256 + 16) + (9 * 512 + 32) + (9 * 1024 + 32) \
        + (16 * 16 * 32 + 16) + (9 * 32 * 16 + 16) + (16 * 11 + 11)


@pytest.mark.parametrize("make, images, message", [
    (lambda: FCN(11, rngs=nnx.Rngs(0)), jnp.zeros((1, 100, 100, 1)),
     r"FCN-8s: H and W must be divisible by the output stride 32, got 100x100 .* pad them to "
     r"128x128 and crop the prediction back"),
    (lambda: TinyFCN(11, rngs=nnx.Rngs(0)), jnp.zeros((1, 27, 28, 1)),
     r"TinyFCN: H and W must be divisible by the output stride 2, got 27x28"),
    (lambda: FCN(11, rngs=nnx.Rngs(0)), jnp.zeros((1, 64, 64, 3)),
     r"FCN-8s: images must have shape \(N, H, W, 1\), got \(1, 64, 64, 3\)"),
])
def test_bad_image_sizes_are_explained(make, images, message):
    with pytest.raises(ValueError, match=message):
        make()(images)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"FCN: variant must be one of \['32s', '16s', '8s'\], got '4s'"):
        FCN(11, "4s", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="init='bilinear' needs in_features == out_features"):
        ConvTranspose(3, 4, 4, stride=2, init="bilinear", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("make", [lambda: TinyFCN(3, rngs=nnx.Rngs(0)),
                                  lambda: FCN(3, "8s", width=4, rngs=nnx.Rngs(0))])
def test_a_few_steps_fit_a_fixed_batch(make):
    """Ten Adam steps on one batch of two-class squares lower the pixel cross-entropy."""
    model = make()
    images = jnp.zeros((4, 32, 32, 1)).at[:, 8:20, 8:20].set(1.0).at[2:, 20:28, 4:12].set(0.5)
    labels = (images[..., 0] > 0.75).astype(jnp.int32) + 2 * (
        (images[..., 0] > 0.25) & (images[..., 0] < 0.75)).astype(jnp.int32)
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: pixel_cross_entropy(m(images), labels))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(10)]
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]

"""FCN models: shapes, the skip architecture's initial equivalences, input-size errors, and that
a few steps of training lower the loss."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from segen_jax.losses import pixel_cross_entropy
from segen_jax.models import Classifier
from segen_jax.models.fcn import FCN, ConvTranspose, TinyFCN, from_classifier
from segen_jax.ops import bilinear_upsample, max_pool2d


def n_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def n_params_leaves(model):
    return len(jax.tree.leaves(nnx.state(model, nnx.Param)))


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


class _XlaFc6FCN(FCN):
    """FCN with fc6 always through XLA's convolution (nnx.Conv), the reference for _fc6."""

    def _fc6(self, x):
        return self.fc6(x)


def _count_convs(model, size):
    jaxpr = jax.make_jaxpr(lambda x: model(x))(jnp.zeros((1, *size, 1)))
    return str(jaxpr).count("conv_general_dilated")


def test_fc6_on_a_tiny_map_is_the_same_function_with_the_same_gradients():
    """FCN._fc6 (im2col on a CPU for a 2x2 map) against XLA's convolution: equal logits and
    parameter gradients, and the switch only where the docstring says."""
    fast, plain = (cls(11, "8s", rngs=nnx.Rngs(0)) for cls in (FCN, _XlaFc6FCN))
    fast.fc6.bias[...] = plain.fc6.bias[...] = jnp.linspace(-0.2, 0.2, 256)
    images = jax.random.uniform(jax.random.key(5), (3, 64, 64, 1))
    labels = jax.random.randint(jax.random.key(6), (3, 64, 64), 0, 11)
    np.testing.assert_allclose(fast(images), plain(images), rtol=1e-5, atol=1e-6)
    grads = [jax.tree.leaves(nnx.grad(lambda m: pixel_cross_entropy(m(images), labels))(m))
             for m in (fast, plain)]
    assert len(grads[1]) == n_params_leaves(plain) and float(jnp.abs(grads[1][0]).max()) > 0
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * float(jnp.abs(want).max()))
    on_cpu = jax.default_backend() == "cpu"
    assert _count_convs(fast, (64, 64)) == _count_convs(plain, (64, 64)) - on_cpu   # 2x2 map
    assert _count_convs(fast, (96, 96)) == _count_convs(plain, (96, 96))           # 3x3 map


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


def test_from_classifier_makes_the_first_two_blocks_the_classifiers_feature_map():
    """After the transfer, FCN's pool2 and TinyFCN's skip path compute what the classifier's
    convolutions compute: the same weights and the same operations, for a whole scene."""
    classifier = Classifier(rngs=nnx.Rngs(1))
    x = jax.random.uniform(jax.random.key(2), (2, 64, 64, 1))
    fcn = FCN(11, "8s", rngs=nnx.Rngs(0))
    before = fcn(x)
    assert from_classifier(fcn, classifier) is fcn
    _, pools = coarse_score(fcn, x)
    np.testing.assert_allclose(pools[1], classifier.feature_map(x), atol=1e-6)
    assert float(jnp.abs(fcn(x) - before).max()) > 1e-3   # the copy changed the network
    tiny = from_classifier(TinyFCN(11, rngs=nnx.Rngs(0)), classifier)
    skip = jax.nn.relu(tiny.enc1[1](jax.nn.relu(tiny.enc1[0](x))))
    first = jax.nn.relu(classifier.conv1b(jax.nn.relu(classifier.conv1a(x))))
    np.testing.assert_allclose(skip, first, atol=1e-6)
    for conv in (tiny.enc2[1], fcn.blocks[1][1]):
        np.testing.assert_array_equal(conv.kernel[...], classifier.conv2b.kernel[...])


def test_from_classifier_rejects_what_does_not_fit():
    with pytest.raises(ValueError, match=r"from_classifier: the classifier's conv1a.kernel has "
                                         r"shape \(3, 3, 1, 8\), the FCN's layer \(3, 3, 1, 16\)"):
        from_classifier(FCN(11, rngs=nnx.Rngs(0)), Classifier(width=8, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"conv1a.kernel has shape \(3, 3, 3, 16\), the "
                                         r"TinyFCN's layer \(3, 3, 1, 16\)"):
        from_classifier(TinyFCN(11, rngs=nnx.Rngs(0)), Classifier(in_channels=3, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"classifier.pool must be 'max' .*, got 'avg'"):
        from_classifier(FCN(11, rngs=nnx.Rngs(0)), Classifier(pool="avg", rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match="model must be a TinyFCN, an FCN or a DeepLab model, got Classifier"):
        from_classifier(Classifier(rngs=nnx.Rngs(0)), Classifier(rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match="classifier must be a Classifier, got TinyFCN"):
        from_classifier(FCN(11, rngs=nnx.Rngs(0)), TinyFCN(11, rngs=nnx.Rngs(0)))


def test_training_the_segmenter_leaves_the_classifier_intact():
    """The transfer copies: a donated train step on the FCN must not free or change the
    classifier's arrays."""
    from segen_jax.recipes import segmentation_loss
    from segen_jax.train import nnx_state, nnx_step

    classifier = Classifier(rngs=nnx.Rngs(1))
    kernel = np.asarray(classifier.conv1a.kernel[...]).copy()
    model = from_classifier(FCN(11, "8s", width=16, rngs=nnx.Rngs(0)), classifier)
    graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param))
    images = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1))
    labels = jnp.zeros((2, 32, 32), jnp.int32).at[:, 8:16, 8:16].set(3)
    state, _ = nnx_step(graphdef, segmentation_loss)(state, (images, labels))
    np.testing.assert_array_equal(classifier.conv1a.kernel[...], kernel)
    assert classifier(jnp.zeros((1, 28, 28, 1))).shape == (1, 10)


@pytest.mark.parametrize("name, first", [("tinyfcn", lambda m: m.enc1[0]),
                                         ("fcn8s", lambda m: m.blocks[0][0])])
def test_segmenter_recipes_start_from_the_shipped_classifier(name, first):
    from segen_jax import weights
    from segen_jax.recipes import RECIPES
    from segen_jax.train import nnx_model

    classifier = weights.load("classifier")
    graphdef, state, _ = RECIPES[name].build(0, 1e-3, 10)
    np.testing.assert_array_equal(first(nnx_model(graphdef, state)).kernel[...],
                                  classifier.conv1a.kernel[...])
    # the recipe's bare model (what weights.load fills in) is a fresh one
    assert not np.allclose(first(RECIPES[name].model(nnx.Rngs(0))).kernel[...],
                           classifier.conv1a.kernel[...])


class _Pointwise(nnx.Module):
    """A 1x1 convolution that insists on inputs divisible by 32: its prediction at a pixel
    depends on that pixel alone, so any shift average must give the plain prediction."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 5, (1, 1), rngs=rngs)

    def __call__(self, images):
        assert images.shape[1] % 32 == 0 and images.shape[2] % 32 == 0, images.shape
        return self.conv(images)


def test_shift_average_crops_each_shift_back_onto_the_image():
    from segen_jax.recipes import predict, predict_shift_average
    model = _Pointwise(nnx.Rngs(0))
    images = jax.random.uniform(jax.random.key(1), (3, 64, 64, 1)) - 0.5
    plain = predict(model, np.asarray(images))
    for kw in (dict(shifts=(0,), margin=0), dict(shifts=(0, 3, 4)), dict(shifts=(1, 6), margin=13)):
        np.testing.assert_array_equal(predict_shift_average(model, images, **kw), plain)
    odd = jax.random.uniform(jax.random.key(2), (2, 50, 41, 1)) - 0.5   # canvas 96 x 64
    out = predict_shift_average(model, odd, batch_size=1)
    assert out.shape == (2, 50, 41)
    np.testing.assert_array_equal(out, np.argmax(model.conv(odd), -1))


def test_shift_average_of_an_fcn_differs_from_one_pass_and_checks_its_arguments():
    from segen_jax.recipes import predict, predict_shift_average
    model = FCN(11, "8s", rngs=nnx.Rngs(0))
    model.score_pool3.kernel[...] = 0.3 * jax.random.normal(jax.random.key(3),
                                                            model.score_pool3.kernel.shape)
    images = jax.random.uniform(jax.random.key(4), (2, 64, 64, 1))
    one = predict_shift_average(model, images, shifts=(0,), margin=0)
    np.testing.assert_array_equal(one, predict(model, np.asarray(images)))
    # By hand: every (dy, dx) pasted at 8 + (dy, dx) on a 96x96 zero canvas, softmax, cropped
    # back, averaged over the 4 shifts, argmax.
    total = 0.0
    for dy in (0, 4):
        for dx in (0, 4):
            canvas = jnp.zeros((2, 96, 96, 1)).at[:, 8 + dy:72 + dy, 8 + dx:72 + dx].set(images)
            total += jax.nn.softmax(model(canvas), -1)[:, 8 + dy:72 + dy, 8 + dx:72 + dx]
    expected = np.argmax(np.asarray(total), -1)
    got = predict_shift_average(model, images, shifts=(0, 4), margin=8)
    assert (got != one).any()
    assert np.mean(got == expected) > 0.999   # float ties aside, the same average
    for kw, message in [(dict(shifts=()), "shifts must be"), (dict(shifts=4), "shifts must be"), (dict(shifts=(0, -1)), "shifts must"),
                        (dict(shifts=(0.5,)), "shifts must"), (dict(margin=-1), "margin must"),
                        (dict(multiple=0), "multiple must"), (dict(batch_size=0), "batch_size")]:
        with pytest.raises(ValueError, match=message):
            predict_shift_average(model, images, **kw)
    with pytest.raises(ValueError, match=r"images must be \(N, H, W, C\)"):
        predict_shift_average(model, images[0])

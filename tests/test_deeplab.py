"""Chapter 4's library: atrous geometry (effective kernel, receptive-field support measured by
gradients), the DeepLab models, and the mean-field dense CRF."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from segen_jax.models import Classifier, DeepLabV3, DeepLabV3Plus, DenseCRF, from_classifier
from segen_jax.models.crf import crf_kernel, dense_crf, free_energy, mean_field
from segen_jax.models.deeplab import ASPP, backbone_plan, scaled_rates
from segen_jax.ops import (conv2d, effective_kernel_size, gradient_support, receptive_field,
                           receptive_field_support)


# --------------------------------------------------------------------------- atrous geometry
@given(k=st.integers(1, 7), r=st.integers(1, 6))
def test_effective_kernel_is_the_zero_inserted_kernel(k, r):
    """conv2d with dilation r equals conv2d with the dense kernel that has r − 1 zeros between
    taps, whose size is effective_kernel_size(k, r)."""
    rng = np.random.default_rng(k * 10 + r)
    w = rng.standard_normal((k, k, 2, 3)).astype(np.float32)
    size = effective_kernel_size(k, r)
    dense = np.zeros((size, size, 2, 3), np.float32)
    dense[::r, ::r] = w
    assert size == k + (k - 1) * (r - 1)
    x = jnp.asarray(rng.standard_normal((1, size + 5, size + 4, 2)), jnp.float32)
    np.testing.assert_allclose(conv2d(x, w, dilation=r), conv2d(x, dense), atol=1e-4)


layer = st.tuples(st.integers(1, 4), st.integers(1, 2), st.integers(1, 3))


@settings(max_examples=20)
@given(layers=st.lists(layer, min_size=1, max_size=3))
def test_receptive_field_support_is_the_gradients_support(layers):
    """The computed support (sum set of tap offsets) equals the input pixels whose gradient
    is non-zero, for stacks of strided, dilated convolutions with positive kernels."""
    support = receptive_field_support(layers)
    assert len(support) == receptive_field(layers).size and support[0] and support[-1]

    def stack(x):
        for k, s, d in layers:
            x = conv2d(x, jnp.ones((k, k, 1, 1)), stride=s, dilation=d)
        return x

    n = len(support) + 2
    measured = gradient_support(stack, (1, n, n, 1), at=(0, 0))
    expected = np.zeros((n, n), bool)
    expected[:len(support), :len(support)] = np.outer(support, support)
    np.testing.assert_array_equal(measured, expected)


def test_equal_rates_grid_and_mixed_rates_fill():
    assert receptive_field_support([(3, 1, 2)] * 3).tolist() == [True, False] * 6 + [True]
    assert receptive_field_support([(3, 1, 1), (3, 1, 2), (3, 1, 3)]).all()


@pytest.mark.parametrize("call, error, match", [
    (lambda: effective_kernel_size(3, 0), ValueError, r"dilation must be an int >= 1, got 0"),
    (lambda: effective_kernel_size(2.5), TypeError, r"k must be an int"),
    (lambda: receptive_field_support("3"), TypeError, r"receptive_field_support: layers must"),
    (lambda: gradient_support(lambda x: x, (4, 4)), ValueError, r"shape must be \(N, H, W, C\)"),
    (lambda: gradient_support(lambda x: x[0], (1, 4, 4, 1)), ValueError,
     r"fn must return \(N, H', W', C'\)"),
    (lambda: gradient_support(lambda x: x, (1, 4, 4, 1), at=(4, 0)), ValueError,
     r"at must lie in the output's"),
    (lambda: gradient_support(lambda x: x, (1, 4, 4, 1), at=2), ValueError,
     r"at must be a pair of ints"),
])
def test_geometry_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- models
def test_backbone_trades_stride_for_rate():
    assert backbone_plan(32) == [(1, True)] * 5
    assert backbone_plan(16) == [(1, True)] * 4 + [(1, False)]
    assert backbone_plan(8) == [(1, True)] * 3 + [(1, False), (2, False)]
    assert scaled_rates((6, 12, 18), 33) == (6, 12, 18)
    assert scaled_rates((6, 12, 18), 8) == (1, 3, 4)
    assert scaled_rates((6, 12, 18), 4) == (1, 2)
    with pytest.raises(ValueError, match="output_stride must be one of"):
        backbone_plan(4)


@pytest.mark.parametrize("cls", [DeepLabV3, DeepLabV3Plus])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_deeplab_maps_images_to_per_pixel_scores(cls, output_stride):
    model = cls(11, output_stride=output_stride, rngs=nnx.Rngs(0))
    sizes = ((64, 64), (32, 96)) if output_stride == 8 else ((64, 64),)
    for size in sizes:
        assert model(jnp.zeros((2, *size, 1))).shape == (2, *size, 11)
    x, low = model.backbone(jnp.zeros((1, 64, 64, 1)))
    assert x.shape == (1, 64 // output_stride, 64 // output_stride, 128)
    assert low.shape == (1, 16, 16, 32)


def test_atrous_backbone_keeps_the_pooled_field_but_the_dropped_pools_pixels():
    """OS 8 drops the last two pools and dilates block 5 by 2: the centre output's measured
    field is the computed one, which is OS 32's less the two pools' own 8 + 16 pixels."""
    def layers(os):
        return [layer for rate, pool in backbone_plan(os)
                for layer in [(3, 1, rate)] * 2 + ([(2, 2, 1)] if pool else [])]

    for os in (32, 8):
        backbone = DeepLabV3(11, output_stride=os, rngs=nnx.Rngs(0)).backbone
        measured = gradient_support(lambda x: backbone(x)[0], (1, 256, 256, 1))
        assert measured.any(0).sum() == measured.any(1).sum() == receptive_field(layers(os)).size
    assert receptive_field(layers(32)).size == receptive_field(layers(8)).size + 24 == 156


def test_aspp_branches_and_image_pooling():
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    full = ASPP(16, 8, rates=(1, 3), rngs=nnx.Rngs(0))
    bare = ASPP(16, 8, rates=(), image_pooling=False, rngs=nnx.Rngs(0))
    assert full(x).shape == bare(x).shape == (2, 8, 8, 8)
    assert len(full.atrous) == 2 and full.project.in_features == 4 * 8
    assert bare.project.in_features == 8
    # the image-pooling branch makes every output depend on every input pixel
    support = gradient_support(lambda v: full(v), (1, 8, 8, 16), at=(0, 0))
    assert support.all()
    assert not gradient_support(lambda v: bare(v), (1, 8, 8, 16), at=(0, 0))[4:, 4:].any()
    with pytest.raises(ValueError, match="rates must be ints >= 1"):
        ASPP(16, 8, rates=(0,), rngs=nnx.Rngs(0))


def test_deeplab_takes_the_classifier_blocks_and_checks_input():
    classifier = Classifier(rngs=nnx.Rngs(3))
    model = from_classifier(DeepLabV3Plus(11, rngs=nnx.Rngs(0)), classifier)
    np.testing.assert_array_equal(model.backbone.blocks[1][1].kernel[...],
                                  classifier.conv2b.kernel[...])
    with pytest.raises(ValueError, match=r"DeepLabV3Plus: H and W must be divisible by the "
                                         r"output stride 32, got 60x64"):
        model(jnp.zeros((1, 60, 64, 1)))
    for kwargs, match in [({"num_classes": 1}, "num_classes must be an int >= 2, got 1"),
                          ({"output_stride": 4}, r"output_stride must be one of \(8, 16, 32\)"),
                          ({"width": 0}, "width must be an int >= 1, got 0"),
                          ({"image_size": 4}, "image_size must be an int >= 8, got 4"),
                          ({"rates": (0, 6)}, "rates must be an int >= 1, got 0")]:
        with pytest.raises(ValueError, match=match):
            DeepLabV3(**{"num_classes": 11, **kwargs}, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="decoder_features must be an int >= 1, got 0"):
        DeepLabV3Plus(11, decoder_features=0, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="from_fcn: model must be a DeepLabV3"):
        from segen_jax.models.deeplab import from_fcn
        from_fcn(classifier, classifier)


def test_decoder_adds_low_level_detail():
    """v3+ output depends on the stride-4 features: zeroing the reduce layer changes it."""
    model = DeepLabV3Plus(11, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(1), (1, 64, 64, 1))
    before = model(x)
    model.reduce.kernel[...] = jnp.zeros_like(model.reduce.kernel[...])
    assert float(jnp.abs(model(x) - before).max()) > 1e-4


# --------------------------------------------------------------------------- dense CRF
STRONG = {"bilateral_weight": 3.0, "bilateral_xy": 6.0, "bilateral_color": 0.3,
          "spatial_weight": 1.0, "spatial_xy": 1.0}    # for the toy's very noisy unaries


def toy(seed, noise=1.2, size=20):
    """A two-region image (left dark, right bright) and unaries that are right on ~70 % of
    pixels."""
    rng = np.random.default_rng(seed)
    labels = np.broadcast_to(np.arange(size) >= size // 2, (size, size)).astype(int)[None]
    image = labels[..., None].astype(np.float32) + 0.05 * rng.standard_normal((1, size, size, 1))
    logits = np.eye(2)[labels] + noise * rng.standard_normal((1, size, size, 2))
    return jnp.asarray(logits, jnp.float32), jnp.asarray(image, jnp.float32), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_field_never_raises_the_free_energy(seed):
    rng = np.random.default_rng(seed)
    logits, image, _ = toy(seed)
    unary = -jax.nn.log_softmax(logits[0].reshape(-1, 2))
    params = {k: float(v * rng.uniform(0.3, 3)) for k, v in STRONG.items()}
    kernel = crf_kernel(image[0], **params)
    energies = [float(free_energy(mean_field(unary, kernel, t), unary, kernel))
                for t in range(8)]
    scale = max(abs(e) for e in energies)
    assert all(b <= a + 1e-5 * scale for a, b in zip(energies, energies[1:])), energies
    assert energies[-1] < energies[0]


def test_free_energy_at_a_hard_labelling_is_the_crf_energy():
    """With the j = i terms kept, F at a one-hot Q is E(x) = Σ ψ + Σ_{i<j} [x_i ≠ x_j] k_ij."""
    logits, image, labels = toy(5, size=6)
    unary = -jax.nn.log_softmax(logits[0].reshape(-1, 2))
    kernel = crf_kernel(image[0], **STRONG)
    x = labels.reshape(-1)
    q = jnp.asarray(np.eye(2)[x], jnp.float32)
    k = np.asarray(kernel, np.float64)
    energy = float(np.asarray(unary)[np.arange(len(x)), x].sum()
                   + np.triu(k * (x[:, None] != x[None]), 1).sum())
    assert float(free_energy(q, unary, kernel)) == pytest.approx(energy, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crf_cleans_noisy_unaries(seed):
    logits, image, labels = toy(seed)
    before = float((np.asarray(logits).argmax(-1) == labels).mean())
    after = float((np.asarray(dense_crf(logits, image, **STRONG)).argmax(-1) == labels).mean())
    assert before < 0.85 and after > before + 0.1


def test_crf_is_differentiable_and_a_module():
    logits, image, _ = toy(0, size=8)
    crf = DenseCRF(iterations=3, spatial_weight=2.0)
    q = crf(logits, image)
    np.testing.assert_allclose(q.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(q, dense_crf(logits, image, iterations=3, spatial_weight=2.0),
                               atol=1e-6)
    grad = jax.grad(lambda lg: dense_crf(lg, image, iterations=3)[..., 0].sum())(logits)
    assert bool(jnp.isfinite(grad).all()) and float(jnp.abs(grad).max()) > 0
    zero = dense_crf(logits, image, iterations=0)
    np.testing.assert_allclose(zero, jax.nn.softmax(logits, -1), atol=1e-6)


@pytest.mark.parametrize("call, error, match", [
    (lambda: dense_crf(jnp.zeros((4, 4, 2)), jnp.zeros((1, 4, 4, 1))), ValueError,
     r"dense_crf: logits must have shape \(N, H, W, K\), got \(4, 4, 2\)"),
    (lambda: dense_crf(jnp.zeros((1, 4, 4, 2)), jnp.zeros((1, 5, 4, 1))), ValueError,
     r"images must have shape \(N, H, W, C\) with the logits' N, H, W \(1, 4, 4\)"),
    (lambda: dense_crf(jnp.zeros((1, 4, 4, 2)), jnp.zeros((1, 4, 4, 1)), sigma=1.0), TypeError,
     r"unknown parameters \['sigma'\]"),
    (lambda: DenseCRF(spatial_xy=0.0), ValueError, r"widths \(xy, color\) > 0, got \{'spatial_xy'"),
    (lambda: DenseCRF(spatial_weight=-1.0), ValueError, r"weights must be >= 0"),
    (lambda: DenseCRF(iterations=True), ValueError, r"iterations must be an int >= 0"),
    (lambda: dense_crf(jnp.zeros((1, 4, 4, 2)), jnp.zeros((1, 4, 4, 1)), bilateral_color=0.0),
     ValueError, r"dense_crf: weights must be >= 0 and widths \(xy, color\) > 0"),
    (lambda: mean_field(jnp.zeros((4, 2)), jnp.eye(4), -2), ValueError,
     r"mean_field: iterations must be an int >= 0, got -2"),
])
def test_crf_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_from_fcn_copies_the_five_blocks_at_any_output_stride():
    from segen_jax.models import FCN
    from segen_jax.models.deeplab import from_fcn
    fcn = FCN(11, "8s", rngs=nnx.Rngs(1))
    for os_ in (8, 32):
        model = from_fcn(DeepLabV3(11, output_stride=os_, rngs=nnx.Rngs(0)), fcn)
        for src_block, dst_block in zip(fcn.blocks, model.backbone.blocks):
            for src, dst in zip(src_block, dst_block):
                np.testing.assert_array_equal(src.kernel[...], dst.kernel[...])
    # at OS 32 the backbone is the FCN's own: the same pool5 features
    x = jax.random.uniform(jax.random.key(0), (1, 64, 64, 1))
    features, _ = model.backbone(x)
    for block in fcn.blocks:
        for conv in block:
            x = jax.nn.relu(conv(x))
        x = jax.numpy.maximum(jax.numpy.maximum(x[:, ::2, ::2], x[:, 1::2, ::2]),
                              jax.numpy.maximum(x[:, ::2, 1::2], x[:, 1::2, 1::2]))
    np.testing.assert_allclose(features, x, atol=1e-5)
    with pytest.raises(ValueError, match="from_fcn: conv 0 of the FCN has kernel"):
        from_fcn(DeepLabV3(11, width=8, rngs=nnx.Rngs(0)), fcn)

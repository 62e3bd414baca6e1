"""segen_jax.ops.conv_strips against XLA: the weight gradient in row strips, and the drop-in
`conv_general_dilated` (values and gradients of lax.conv_general_dilated), as the models use it.

Tolerance as in test_conv.py: O(1) float32 inputs, each weight-gradient entry a sum of n products
(n = N·H_out·W_out), summed in another order than XLA's: atol = 1e-5·√n, rtol = 1e-5.
"""
import functools

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

from segen_jax.models import TinyFCN
from segen_jax.ops import conv_strips
from segen_jax.ops.conv_strips import (conv_general_dilated, strip_count,
                                       weight_gradient_in_strips)

DN = ("NHWC", "HWIO", "NHWC")
# test_conv.py explains these options: cheap compiles, and XLA:CPU's algebraic simplifier off
# (it aborts on some strided input gradients whose kernel spans the input).
fast_jit = functools.partial(jax.jit, static_argnums=(2, 3, 4), compiler_options={
    "xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False, "xla_disable_hlo_passes": "algsimp"})


@pytest.fixture(autouse=True, scope="module")
def full_float32_products():
    with jax.default_matmul_precision("highest"):
        yield


@pytest.fixture(autouse=True)
def strips_on_any_backend(monkeypatch):
    """The strips are taken on the CPU only; these tests check them on whatever JAX runs on."""
    monkeypatch.setattr(conv_strips, "_on_cpu", lambda: True)


def assert_close(actual, expected, n_terms):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5,
                               atol=1e-5 * np.sqrt(n_terms))


@st.composite
def conv_cases(draw, max_batch=5):
    """(x, w, strides, padding pairs, dilation) as layers meet them: the input at least as large
    as the dilated kernel, and no padding wider than the kernel's reach (extent − 1). Outside
    that, XLA:CPU (jaxlib 0.10.2) computes some input gradients wrongly by itself: x (1, 1, 3, 1),
    w (2, 1, 1, 4), padding ((2, 0), (0, 0)), whose first output row is all padding, gave
    ∂L/∂x with entries of 1e21-1e33 or NaN under test_conv.py's compile options and a value that
    differs from the un-jitted one under XLA's defaults, for lax.conv_general_dilated alone."""
    n = draw(st.integers(1, max_batch))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    extent = [d * (k - 1) + 1 for k, d in zip((kh, kw), dilation)]
    padding = tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in extent)
    h, w = draw(st.integers(extent[0], 10)), draw(st.integers(extent[1], 10))
    c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    kx, kw_ = jax.random.split(jax.random.key(seed))
    return (jax.random.normal(kx, (n, h, w, c_in)), jax.random.normal(kw_, (kh, kw, c_in, c_out)),
            strides, padding, dilation)


def lax_conv(x, w, strides, padding, dilation):
    return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=DN)


def strips_conv(x, w, strides, padding, dilation):
    return conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                dimension_numbers=DN)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@given(conv_cases(), st.data())
def test_weight_gradient_in_strips_equals_xla_for_every_strip_count(case, data):
    x, w, strides, padding, dilation = case
    out_shape = jax.eval_shape(lambda x, w: lax_conv(x, w, strides, padding, dilation),
                               x, w).shape
    dy = jax.random.normal(jax.random.key(7), out_shape)
    strips = data.draw(st.sampled_from(divisors(out_shape[1])))

    def both(x, dy, strides, padding, dilation):   # one compiled program per example
        xla = jax.vjp(lambda v: lax_conv(x, v, strides, padding, dilation), w)[1](dy)[0]
        return xla, weight_gradient_in_strips(x, dy, w.shape, strides=strides, padding=padding,
                                              dilation=dilation, strips=strips)

    want, got = fast_jit(both)(x, dy, strides, padding, dilation)
    assert_close(got, want, n_terms=np.prod(out_shape[:3]))


@pytest.mark.parametrize("n, h, kh, stride, dilation, top_bottom", [
    (1, 17, 3, 2, 2, (2, 1)),   # H_out 8 (S = 1, 2, 4, 8), a padded row the convolution skips
    (2, 17, 3, 2, 1, (1, 0)),   # H_out 8, a skipped row
    (3, 16, 4, 2, 1, (1, 1)),   # the DCGAN discriminator's k4 s2 p1
    (2, 13, 3, 1, 3, (3, 3)),   # H_out 13: S = 1 or 13 (one row per strip)
])
def test_weight_gradient_in_strips_on_strided_and_dilated_layers(n, h, kh, stride, dilation,
                                                                top_bottom):
    """Fixed cases the drawn ones may miss: stride 2 with a 3x3 or 4x4 kernel and S > 1, and
    inputs whose last padded rows no output reaches."""
    x = jax.random.normal(jax.random.key(0), (n, h, 7, 3))
    w = jax.random.normal(jax.random.key(1), (kh, 3, 3, 2))
    padding, strides, dilations = (top_bottom, (1, 1)), (stride, 1), (dilation, 1)
    y, pullback = jax.vjp(lambda v: lax_conv(x, v, strides, padding, dilations), w)
    dy = jax.random.normal(jax.random.key(2), y.shape)
    want = pullback(dy)[0]
    for strips in divisors(y.shape[1]):
        got = weight_gradient_in_strips(x, dy, w.shape, strides=strides, padding=padding,
                                        dilation=dilations, strips=strips)
        assert_close(got, want, n_terms=np.prod(y.shape[:3]))


@given(conv_cases())
def test_drop_in_equals_lax_values_and_gradients(case):
    x, w, strides, padding, dilation = case

    def loss(conv, x, w, strides, padding, dilation):
        y = conv(x, w, strides, padding, dilation)
        return jnp.sum(jnp.sin(y)), y

    def gradients(conv):
        run = fast_jit(lambda x, w, s, p, d: jax.grad(loss, argnums=(1, 2), has_aux=True)(
            conv, x, w, s, p, d))
        return run(x, w, strides, padding, dilation)

    (dx, dw), y = gradients(strips_conv)
    (dx_ref, dw_ref), y_ref = gradients(lax_conv)
    kh, kw, c_in, _ = w.shape
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))   # the same lax call
    assert_close(dx, dx_ref, n_terms=kh * kw * w.shape[3])
    assert_close(dw, dw_ref, n_terms=np.prod(y.shape[:3]))


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 0), (2, 1))])
def test_drop_in_takes_padding_strings_and_pairs_and_second_derivatives(padding):
    """As nnx.Conv calls it ("SAME" stays a string); reverse over reverse, as a gradient
    penalty differentiates ‖∂D/∂x‖² with respect to the weights."""
    x = jax.random.normal(jax.random.key(0), (2, 9, 7, 3))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))

    def penalty(conv, w):
        grad_x = jax.grad(lambda v: jnp.sum(jnp.tanh(conv(v, w, (2, 1), padding, None, (1, 2),
                                                          DN))))(x)
        return jnp.sum(grad_x ** 2)

    got = jax.jit(jax.value_and_grad(functools.partial(penalty, conv_general_dilated)))(w)
    want = jax.jit(jax.value_and_grad(functools.partial(penalty, lax.conv_general_dilated)))(w)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    assert_close(got[1], want[1], n_terms=9 * 7 * 2 * 9)


@pytest.mark.parametrize("batch, rows, strips", [(4, 64, 2), (1, 64, 8), (2, 32, 4), (3, 64, 4),
                                                 (5, 64, 2), (4, 3, 3), (1, 3, 3), (8, 64, 1),
                                                 (32, 2, 1), (4, 1, 1)])
def test_strip_count_is_the_smallest_divisor_reaching_eight_images(batch, rows, strips):
    assert strip_count(batch, rows) == strips


def test_weight_gradient_in_strips_names_a_bad_strip_count():
    x, dy = jnp.ones((1, 6, 6, 1)), jnp.ones((1, 6, 6, 1))
    with pytest.raises(ValueError, match="strips must be a positive divisor of the output's 6 "
                                         "rows, got 4"):
        weight_gradient_in_strips(x, dy, (1, 1, 1, 1), strides=(1, 1),
                                  padding=((0, 0), (0, 0)), dilation=(1, 1), strips=4)


def test_drop_in_refuses_what_lax_refuses_and_handles_an_output_without_rows():
    x, w = jnp.ones((2, 3, 3, 1)), jnp.ones((3, 3, 1, 2))
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        conv_general_dilated(x, w, (1, 1), ((1.5, 1), (1, 1)), dimension_numbers=DN)
    with pytest.raises(TypeError, match="prefered_element_type"):
        conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN,
                             prefered_element_type=None)
    tall = jnp.ones((2, 2, 3, 1))         # a 3-row kernel over 2 rows, VALID: no output rows
    grad = jax.grad(lambda w: jnp.sum(conv_general_dilated(tall, w, (1, 1), "VALID",
                                                           dimension_numbers=DN)))(w)
    np.testing.assert_array_equal(grad, np.zeros(w.shape))


def custom_vjp_calls(fn, *args):
    """How many custom-VJP functions fn(*args) calls (in its jaxpr, before differentiation)."""
    jaxpr = jax.make_jaxpr(fn)(*args)

    def count(jaxpr):
        n = 0
        for eqn in jaxpr.eqns:
            n += "custom_vjp" in eqn.primitive.name
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                n += count(sub)
        return n
    return count(jaxpr.jaxpr)


def test_strips_only_for_small_batches_on_the_cpu(monkeypatch):
    def calls(batch):    # a new function each time: JAX caches traces by function
        conv = lambda x: conv_general_dilated(x, jnp.ones((3, 3, 2, 2)), (1, 1), "SAME",
                                              dimension_numbers=DN)
        return custom_vjp_calls(conv, jnp.ones((batch, 8, 8, 2)))

    assert calls(4) == 1
    assert calls(8) == 0                                          # XLA's own from 8 images on
    monkeypatch.setattr(conv_strips, "_on_cpu", lambda: False)
    assert calls(4) == 0                                          # GPU, TPU


def test_segmenter_convolutions_take_their_weight_gradients_in_strips():
    """TinyFCN, FCN and DeepLab build their nnx.Conv layers with the drop-in (fcn._conv), so
    a batch of 4 (the segmenter recipes' batch) trains through the strips (all but the first
    layer, of one input channel: ops.conv_one_channel); same gradients."""
    model = TinyFCN(3, rngs=nnx.Rngs(0))
    images = jax.random.normal(jax.random.key(1), (4, 16, 16, 1))

    def loss(model):
        return jnp.mean(model(images) ** 2)

    graphdef, params = nnx.split(model)
    # 6 convolutions; the first (one input channel) takes ops.conv_one_channel's path instead
    assert custom_vjp_calls(lambda p: loss(nnx.merge(graphdef, p)), params) == 5
    grads = nnx.grad(loss)(model)
    for _, conv in nnx.iter_graph(model):
        if isinstance(conv, nnx.Conv):
            conv.conv_general_dilated = lax.conv_general_dilated
    want = nnx.grad(loss)(model)
    for got, ref in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):   # sums of <= 1,024
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.abs(ref).max()))

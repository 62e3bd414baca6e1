"""segen_jax.ops.conv_one_channel against XLA: the drop-in `conv_general_dilated` computes
lax.conv_general_dilated (values, gradients, forward mode) as kh·kw scaled shifted copies for
one input channel and stride 1 on the CPU, and is lax's own call everywhere else.

Tolerance as in test_conv.py: O(1) float32 inputs, each entry a sum of n products summed in
another order than XLA's: atol = 1e-5·√n, rtol = 1e-5.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from segen_jax.models import FCN, DeepLabV3Plus, TinyFCN
from segen_jax.ops import conv_one_channel
from segen_jax.ops.conv_one_channel import conv_general_dilated

DN = ("NHWC", "HWIO", "NHWC")
# test_conv.py explains these options: cheap compiles, and XLA:CPU's algebraic simplifier off.
fast_jit = functools.partial(jax.jit, static_argnums=(2, 3), compiler_options={
    "xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False, "xla_disable_hlo_passes": "algsimp"})


@pytest.fixture(autouse=True)
def on_any_backend(monkeypatch):
    """The shifted copies are taken on the CPU only; these tests check them wherever JAX runs."""
    monkeypatch.setattr(conv_one_channel, "_on_cpu", lambda: True)


def assert_close(actual, expected, n_terms):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5,
                               atol=1e-5 * np.sqrt(n_terms))


@st.composite
def one_channel_cases(draw):
    """(x (N, H, W, 1), w (kh, kw, 1, C_out), padding pairs, dilation), the input at least as
    large as the dilated kernel and no padding wider than the kernel's reach (test_conv_strips
    says why: XLA:CPU's own input gradient goes wrong beyond it)."""
    n = draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    extent = [d * (k - 1) + 1 for k, d in zip((kh, kw), dilation)]
    padding = tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in extent)
    h, w = draw(st.integers(extent[0], 12)), draw(st.integers(extent[1], 12))
    c_out = draw(st.integers(1, 5))
    kx, kw_ = jax.random.split(jax.random.key(draw(st.integers(0, 2**16))))
    return (jax.random.normal(kx, (n, h, w, 1)), jax.random.normal(kw_, (kh, kw, 1, c_out)),
            padding, dilation)


def lax_conv(x, w, padding, dilation):
    return lax.conv_general_dilated(x, w, (1, 1), padding, rhs_dilation=dilation,
                                    dimension_numbers=DN)


def drop_in(x, w, padding, dilation):
    return conv_general_dilated(x, w, (1, 1), padding, rhs_dilation=dilation,
                                dimension_numbers=DN)


def convolutions(fn, *args):
    """How many XLA convolutions fn(*args) calls (in its jaxpr)."""
    return str(jax.make_jaxpr(fn)(*args)).count("conv_general_dilated[")


@settings(max_examples=min(settings.default.max_examples, 60))   # ~1 s per example
@given(one_channel_cases())
def test_equals_lax_values_gradients_and_forward_mode(case):
    """Values, reverse mode (∂/∂x, ∂/∂w) and forward mode (jax.jvp, tangents in x and w at
    once: no custom VJP here), each against lax's."""
    x, w, padding, dilation = case
    tangents = (jnp.cos(x), jnp.sin(w))

    def loss(conv, x, w, padding, dilation):
        y = conv(x, w, padding, dilation)
        return jnp.sum(jnp.sin(y)), y

    def both(x, w, padding, dilation):   # one compiled program per example
        return [(jax.grad(loss, argnums=(1, 2), has_aux=True)(conv, x, w, padding, dilation),
                 jax.jvp(lambda x, w: conv(x, w, padding, dilation), (x, w), tangents)[1])
                for conv in (drop_in, lax_conv)]

    got, want = fast_jit(both)(x, w, padding, dilation)
    ((dx, dw), y), jvp = got
    ((dx_ref, dw_ref), y_ref), jvp_ref = want
    kh, kw, _, c_out = w.shape
    assert_close(y, y_ref, n_terms=kh * kw)
    assert_close(jvp, jvp_ref, n_terms=2 * kh * kw)
    assert_close(dx, dx_ref, n_terms=kh * kw * c_out)
    assert_close(dw, dw_ref, n_terms=np.prod(y.shape[:3]))
    assert convolutions(lambda x, w: drop_in(x, w, padding, dilation), x, w) == 0   # the copies


@pytest.mark.parametrize("padding", ["SAME", "VALID", "SAME_LOWER", ((2, 0), (1, 2))])
def test_takes_lax_padding_strings_and_pairs(padding):
    x = jax.random.normal(jax.random.key(0), (2, 9, 8, 1))
    w = jax.random.normal(jax.random.key(1), (4, 3, 1, 3))
    got = conv_general_dilated(x, w, (1, 1), padding, None, (1, 2), DN)
    want = lax.conv_general_dilated(x, w, (1, 1), padding, None, (1, 2), DN)
    assert_close(got, want, n_terms=12)


ONE = ((2, 8, 8, 1), (3, 3, 1, 4))


@pytest.mark.parametrize("shapes, kwargs, why", [
    (((2, 8, 8, 3), (3, 3, 3, 4)), {}, "three input channels"),
    (ONE, dict(window_strides=(2, 1)), "stride 2"),
    (ONE, dict(padding=((-1, 1), (1, 1))), "a negative padding (a crop)"),
    (ONE, dict(lhs_dilation=(2, 1), padding=((1, 1), (1, 1))), "input dilation"),
    (((2, 1, 8, 8), (4, 1, 3, 3)), dict(dimension_numbers=("NCHW", "OIHW", "NCHW")), "NCHW"),
    (((2, 8, 1), (3, 1, 4)), dict(window_strides=(1,), padding="SAME",
                                  dimension_numbers=("NWC", "WIO", "NWC")), "1-D"),
    (ONE, dict(dtype=jnp.bfloat16), "bfloat16 (XLA rounds once, the copies kh·kw times)"),
    (ONE, dict(precision=lax.Precision.HIGHEST), "a precision"),
    (ONE, dict(preferred_element_type=jnp.float32), "a preferred element type"),
    (((2, 2, 2, 1), (3, 3, 1, 4)), dict(padding="VALID"), "an output without pixels"),
])
def test_is_lax_itself_outside_its_case(shapes, kwargs, why):
    kwargs = {"window_strides": (1, 1), "padding": "SAME", "dimension_numbers": DN, **kwargs}
    dtype = kwargs.pop("dtype", jnp.float32)
    x = jax.random.normal(jax.random.key(0), shapes[0], dtype)
    w = jax.random.normal(jax.random.key(1), shapes[1], dtype)
    conv = lambda x, w: conv_general_dilated(x, w, **kwargs)
    np.testing.assert_array_equal(conv(x, w), lax.conv_general_dilated(x, w, **kwargs))
    assert convolutions(conv, x, w) == 1, why


def test_is_lax_itself_off_the_cpu_and_passes_fallback_the_rest(monkeypatch):
    x, w = jnp.ones((2, 6, 6, 1)), jnp.ones((3, 3, 1, 2))

    def calls():    # a new function each time: JAX caches traces by function
        return convolutions(lambda x, w: conv_general_dilated(x, w, (1, 1), "SAME",
                                                              dimension_numbers=DN), x, w)
    assert calls() == 0
    monkeypatch.setattr(conv_one_channel, "_on_cpu", lambda: False)
    assert calls() == 1
    seen = []
    fallback = lambda *args, **kwargs: seen.append((args, kwargs)) or lax.conv_general_dilated(
        *args, **kwargs)
    conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN, fallback=fallback)
    assert len(seen) == 1 and seen[0][0][:4] == (x, w, (1, 1), "SAME")


@pytest.mark.parametrize("w_dtype, kwargs, error, match", [
    (jnp.float32, dict(padding=((1.5, 1), (1, 1))), ValueError, "padding argument"),
    (jnp.float32, dict(window_strides=(1,)), ValueError, "window_strides"),
    (jnp.float32, dict(precision="garbage"), ValueError, "Precision argument"),
    (jnp.float32, dict(prefered_element_type=None), TypeError, "prefered_element_type"),
    (jnp.bfloat16, {}, TypeError, "same dtypes"),
])
def test_refuses_what_lax_refuses_with_lax_s_error(w_dtype, kwargs, error, match):
    x, w = jnp.ones((2, 3, 3, 1)), jnp.ones((3, 3, 1, 2), w_dtype)
    kwargs = {"window_strides": (1, 1), "padding": "SAME", "dimension_numbers": DN, **kwargs}
    with pytest.raises(error, match=match):
        conv_general_dilated(x, w, **kwargs)


@pytest.mark.parametrize("make, size", [
    (lambda: TinyFCN(3, rngs=nnx.Rngs(0)), 16),
    (lambda: FCN(3, "8s", width=4, rngs=nnx.Rngs(0)), 32),
    (lambda: DeepLabV3Plus(3, output_stride=8, width=4, rngs=nnx.Rngs(0)), 32),
])
def test_models_first_layer_takes_the_shifted_copies_with_the_same_gradients(make, size):
    """The segmenters' first convolution (one input channel, fcn._conv) runs without an XLA
    convolution; every parameter's gradient equals that of the same model on lax's for that
    layer. (The Classifier keeps nnx.Conv's default: its step was 0.98-1.06x with the copies,
    inside the windows' spread.)"""
    model = make()
    images = jax.random.normal(jax.random.key(1), (2, size, size, 1))

    def loss(model):
        return jnp.mean(model(images) ** 2)

    def xla_convolutions(model):
        graphdef, params = nnx.split(model)
        return convolutions(lambda p: loss(nnx.merge(graphdef, p)), params)

    calls, grads = xla_convolutions(model), nnx.grad(loss)(model)
    first = [conv for _, conv in nnx.iter_graph(model)
             if isinstance(conv, nnx.Conv) and conv.in_features == 1]
    assert len(first) == 1
    first[0].conv_general_dilated = lax.conv_general_dilated
    assert xla_convolutions(model) == calls + 1
    want = nnx.grad(loss)(model)
    for got, ref in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.abs(ref).max()))

"""conv_transpose2d is the adjoint of conv2d; bilinear upsampling and its transposed-conv kernel.

References: the adjoint identity <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>,
jax.linear_transpose of conv2d (the same linear map, computed by JAX), and
lax.conv_transpose(..., transpose_kernel=True) with the explicit padding (d(k−1) − p,
d(k−1) − p + output_padding) of the zero-inserted input; jax.image.resize for bilinear
upsampling. Tolerance as in test_conv.py: atol = 1e-5·√(terms per output) + rtol 1e-5.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from jax import lax

from segen_jax.ops import (bilinear_kernel, bilinear_upsample, conv2d, conv_output_size,
                           conv_transpose2d, transposed_output_size)

# Without its algebraic simplifier: XLA:CPU aborts the process compiling some transposed
# convolutions of tiny inputs with it (test_conv.py explains; the @example of the adjoint test).
fast_jit = functools.partial(jax.jit, compiler_options={
    "xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
    "xla_disable_hlo_passes": "algsimp"})


@pytest.fixture(autouse=True, scope="module")
def full_float32_products():
    with jax.default_matmul_precision("highest"):
        yield


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def int_or_pair(lo, hi):
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


@st.composite
def transpose_cases(draw):
    """y (N, H, W, C_out), w (kh, kw, C_in, C_out), stride, padding, output_padding, dilation
    such that the output has at least one pixel."""
    n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride, dilation = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 3))
    padding = draw(int_or_pair(0, 3))
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in pair(stride))
    if draw(st.booleans()) and len(set(output_padding)) == 1:
        output_padding = output_padding[0]
    out = [(m - 1) * s - 2 * p + d * (k - 1) + o + 1 for m, k, s, p, o, d in
           zip(size, kernel, pair(stride), pair(padding), pair(output_padding), pair(dilation))]
    assume(min(out) >= 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
    return dict(y=normal(n, *size, c_out), w=normal(*kernel, c_in, c_out), b=normal(c_in),
                x_shape=(n, *out, c_in), normal=normal, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation)


def transpose_case_of(seed, y_shape, w_shape, stride, padding, output_padding, dilation):
    """One case like transpose_cases' (for @example)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
    out = [(m - 1) * s - 2 * p + d * (k - 1) + o + 1 for m, k, s, p, o, d in
           zip(y_shape[1:3], w_shape[:2], pair(stride), pair(padding), pair(output_padding),
               pair(dilation))]
    return dict(y=normal(*y_shape), w=normal(*w_shape), b=normal(w_shape[2]),
                x_shape=(y_shape[0], *out, w_shape[2]), normal=normal, stride=stride,
                padding=padding, output_padding=output_padding, dilation=dilation)


def geometry(case, with_output_padding=True):
    keys = ("stride", "padding", "dilation") + (("output_padding",) if with_output_padding else ())
    return {k: case[k] for k in keys}


def lax_reference(y, w, case):
    pads = [(d * (k - 1) - p, d * (k - 1) - p + o) for k, p, o, d in
            zip(w.shape[:2], pair(case["padding"]), pair(case["output_padding"]),
                pair(case["dilation"]))]
    return lax.conv_transpose(y, w, pair(case["stride"]), pads, rhs_dilation=pair(case["dilation"]),
                              dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)


@given(transpose_cases())
@example(transpose_case_of(0, (2, 3, 1, 1), (2, 2, 1, 1), stride=(2, 3), padding=1,
                           output_padding=(0, 2), dilation=1))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case):
    y, w, b = case["y"], case["w"], case["b"]
    x = case["normal"](*case["x_shape"])
    geo = geometry(case)

    @fast_jit
    def run(x, y, w, b):
        xt = conv_transpose2d(y, w, **geo)
        # the same linear map as JAX's transpose of conv2d at this x's shape
        transposed = jax.linear_transpose(lambda v: conv2d(v, w, **geometry(case, False)), x)(y)[0]
        return (xt, conv_transpose2d(y, w, b, **geo), transposed, lax_reference(y, w, case),
                jnp.vdot(conv2d(x, w, **geometry(case, False)), y), jnp.vdot(x, xt))

    xt, with_bias, transposed, reference, lhs, rhs = run(x, y, w, b)
    assert xt.shape == case["x_shape"]
    kh, kw, c_in, c_out = w.shape
    atol = 1e-5 * np.sqrt(kh * kw * c_out)
    np.testing.assert_allclose(xt, transposed, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(xt, reference, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(with_bias, xt + b, rtol=1e-5, atol=1e-5)
    # <Cx, y> = <x, Cᵀy>: sums of x.size·kh·kw·c_out products of O(1) numbers
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-4, abs=1e-4 * np.sqrt(xt.size * kh * kw))


@given(st.integers(1, 20), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3),
       st.integers(1, 3), st.data())
def test_output_padding_picks_which_input_size_conv2d_came_from(n, k, s, p, d, data):
    """conv2d maps every n in a block of s sizes to the same output size m; transposed
    convolution with output_padding 0 … s − 1 returns each of them. When the padding reaches
    further than the kernel (e.g. n = 1, k = 1, s = 3, p = 1), output_padding 0 would give
    fewer than 1 pixel, which is an error; the output_padding that gives n still works."""
    assume(d * (k - 1) + 1 <= n + 2 * p)
    m = conv_output_size(n, k, stride=s, padding=p, dilation=d)
    first = (m - 1) * s - 2 * p + d * (k - 1) + 1       # the size at output_padding 0
    if first >= 1:
        assert transposed_output_size(m, k, stride=s, padding=p, dilation=d) == first
    else:
        with pytest.raises(ValueError, match="padding .* is too large"):
            transposed_output_size(m, k, stride=s, padding=p, dilation=d)
    assert first <= n < first + s
    op = n - first
    assert transposed_output_size(m, k, stride=s, padding=p, output_padding=op, dilation=d) == n


def test_stride_two_puts_zeros_between_the_pixels():
    """With a 1x1 kernel of weight 1 and stride 2, transposed conv spreads y onto every second
    pixel and leaves zeros between."""
    y = jnp.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    x = conv_transpose2d(y, jnp.ones((1, 1, 1, 1)), stride=2, output_padding=1)
    np.testing.assert_array_equal(x[0, :, :, 0], [[1, 0, 2, 0], [0, 0, 0, 0],
                                                  [3, 0, 4, 0], [0, 0, 0, 0]])


# --------------------------------------------------------------------------- bilinear
@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
def test_bilinear_upsample_matches_jax_image_resize(factor):
    x = jax.random.normal(jax.random.key(factor), (2, 5, 7, 3))
    want = jax.image.resize(x, (2, 5 * factor, 7 * factor, 3), "bilinear", antialias=False)
    np.testing.assert_allclose(bilinear_upsample(x, factor), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("factor", [2, 3, 4, 5, 8])
def test_transposed_conv_with_the_bilinear_kernel_is_bilinear_upsampling(factor):
    """Equal everywhere once x is edge-padded by one pixel (the conv sees zeros beyond the
    border) and the result cropped by factor; equal in the interior without padding."""
    x = jax.random.normal(jax.random.key(factor), (2, 6, 5, 3))
    kernel = bilinear_kernel(factor, 3)
    assert kernel.shape == (2 * factor - factor % 2,) * 2 + (3, 3)
    up = lambda v: conv_transpose2d(v, kernel, stride=factor, padding=factor // 2)
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    f = factor
    np.testing.assert_allclose(up(padded)[:, f:-f, f:-f], bilinear_upsample(x, f),
                               rtol=1e-5, atol=1e-5)
    direct = up(x)
    assert direct.shape == (2, 6 * f, 5 * f, 3)
    np.testing.assert_allclose(direct[:, f:-f, f:-f], bilinear_upsample(x, f)[:, f:-f, f:-f],
                               rtol=1e-5, atol=1e-5)
    # a constant image stays constant inside: the kernel's taps at each phase sum to 1
    np.testing.assert_allclose(up(jnp.ones((1, 4, 4, 3)))[:, f:-f, f:-f], 1.0, atol=1e-6)


def test_bilinear_kernel_keeps_channels_apart():
    k = bilinear_kernel(2, 3)
    assert float(jnp.abs(k[:, :, 0, 1]).max()) == 0.0
    np.testing.assert_allclose(k[:, :, 1, 1], np.outer([0.25, 0.75, 0.75, 0.25],
                                                       [0.25, 0.75, 0.75, 0.25]))


# --------------------------------------------------------------------------- bad input
Y, W = jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 2, 3))


@pytest.mark.parametrize("call, error, message", [
    (lambda: conv_transpose2d(Y, W, stride=2, output_padding=2), ValueError,
     r"conv_transpose2d: output_padding must be smaller than stride, got output_padding 2 and "
     r"stride 2"),
    (lambda: conv_transpose2d(Y, jnp.zeros((3, 3, 3, 2))), ValueError,
     r"conv_transpose2d: y has C_out = 3 channels but w has 2"),
    (lambda: conv_transpose2d(Y[0], W), ValueError,
     r"conv_transpose2d: y must have shape \(N, H, W, C_out\) = 4 dims, got shape \(4, 4, 3\)"),
    (lambda: conv_transpose2d(Y, W, padding="SAME"), TypeError, r"padding must be an int or a pair"),
    (lambda: conv_transpose2d(Y, W, padding=5), ValueError, r"padding 5 is too large"),
    (lambda: conv_transpose2d(Y, W, jnp.zeros(3)), ValueError, r"b must have shape \(C_in,\) = \(2,\)"),
    (lambda: conv_transpose2d(Y, W, stride=0), ValueError, r"stride must be >= 1, got 0"),
    (lambda: conv_transpose2d(jnp.zeros((1, 0, 4, 3)), W), ValueError,
     r"conv_transpose2d: y and w must be non-empty, got shapes \(1, 0, 4, 3\)"),
    (lambda: transposed_output_size(4, 3, stride=2, output_padding=3), ValueError,
     r"transposed_output_size: output_padding must be smaller than stride"),
    (lambda: transposed_output_size(4.0, 3), TypeError, r"transposed_output_size: n must be an int"),
    (lambda: bilinear_kernel(0, 3), ValueError, r"bilinear_kernel: factor must be an int >= 1, got 0"),
    (lambda: bilinear_kernel(2, 0), ValueError, r"bilinear_kernel: channels must be an int >= 1"),
    (lambda: bilinear_kernel(2, 2.5), TypeError, r"bilinear_kernel: channels must be an int"),
    (lambda: bilinear_upsample(jnp.zeros((1, 4, 4, 1), jnp.int32), 2), TypeError,
     r"bilinear_upsample: x must be a float array"),
    (lambda: bilinear_upsample(jnp.zeros((4, 4)), 2), ValueError, r"x must have shape"),
])
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()

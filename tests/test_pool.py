"""segen_jax.ops.pool against XLA and Flax: values and gradients of max/avg pooling (overlapping
windows, strides, paddings, ties), the hand-derived backward passes, global average pooling,
and the errors for bad input.

References: `lax.reduce_window` (max with −∞ padding; sum divided by the reduce_window count of
ones, i.e. padding excluded), `flax.nnx.max_pool` / `nnx.avg_pool(count_include_pad=False)`,
and their jax.grad / jax.vjp. Tolerance: an average or an overlapping-window gradient is a
float32 sum of at most kh·kw O(1) terms, off by ~eps·kh·kw (≤ 2e-6 here); atol = 1e-6·kh·kw
plus rtol = 1e-6. A routing bug is off by O(1).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import assume, given
from hypothesis import strategies as st
from jax import lax

from segen_jax.ops import (avg_pool2d, avg_pool2d_backward, global_avg_pool, max_pool2d,
                           max_pool2d_backward)

fast_jit = functools.partial(jax.jit, compiler_options={
    "xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True})


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def int_or_pair(lo, hi):
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


@st.composite
def pool_cases(draw):
    """x (N, H, W, C) and a geometry where every window fits and holds a pixel of x.

    Half of the cases draw x from a few integers, so that windows often hold tied maxima."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    window = draw(int_or_pair(1, 4))
    stride = draw(st.one_of(st.none(), int_or_pair(1, 4)))
    padding = draw(st.one_of(int_or_pair(0, 3), st.sampled_from(["SAME", "VALID"])))
    k, s = pair(window), pair(window if stride is None else stride)
    if not isinstance(padding, str):
        assume(all(p < ki for p, ki in zip(pair(padding), k)))
    if padding != "SAME":
        pads = (0, 0) if padding == "VALID" else pair(padding)
        assume(all(ki <= m + 2 * p for ki, m, p in zip(k, size, pads)))
    else:   # XLA's SAME split must keep a pixel in every window
        for m, ki, si in zip(size, k, s):
            total = max((-(-m // si) - 1) * si + ki - m, 0)
            assume(total - total // 2 < ki)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ties = draw(st.booleans())
    shape = (n, *size, c)
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    return dict(x=jnp.asarray(x, jnp.float32), window=window, stride=stride, padding=padding,
                dy=jnp.asarray(rng.standard_normal(shape), jnp.float32), k=k, s=s)


def lax_pads(case):
    return case["padding"] if isinstance(case["padding"], str) else \
        [(0, 0), *[(p, p) for p in pair(case["padding"])], (0, 0)]


def ref_max(x, case):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *case["k"], 1), (1, *case["s"], 1),
                             lax_pads(case))


def ref_avg(x, case):
    window = lambda v: lax.reduce_window(v, 0.0, lax.add, (1, *case["k"], 1),
                                         (1, *case["s"], 1), lax_pads(case))
    return window(x) / window(jnp.ones_like(x))


def nnx_padding(case):
    p = case["padding"]
    return p if isinstance(p, str) else tuple((q, q) for q in pair(p))


def geometry(case):
    return dict(stride=case["stride"], padding=case["padding"])


def assert_close(actual, expected, case):
    assert actual.shape == expected.shape
    n_terms = case["k"][0] * case["k"][1]
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-6,
                               atol=1e-6 * n_terms)


# --------------------------------------------------------------------------- values
@given(pool_cases())
def test_pooling_values_match_lax_and_flax(case):
    x, geo = case["x"], geometry(case)

    @fast_jit
    def run(x):
        flax_kw = dict(window_shape=case["k"], strides=case["s"], padding=nnx_padding(case))
        return (max_pool2d(x, case["window"], **geo), ref_max(x, case), nnx.max_pool(x, **flax_kw),
                avg_pool2d(x, case["window"], **geo), ref_avg(x, case),
                nnx.avg_pool(x, count_include_pad=False, **flax_kw))

    ours_max, lax_max, flax_max, ours_avg, lax_avg, flax_avg = run(x)
    np.testing.assert_array_equal(ours_max, lax_max)      # a max is exact: no rounding
    np.testing.assert_array_equal(ours_max, flax_max)
    assert_close(ours_avg, lax_avg, case)
    assert_close(ours_avg, flax_avg, case)


# --------------------------------------------------------------------------- gradients
@given(pool_cases())
def test_gradients_and_backward_passes_match_lax(case):
    """jax.grad through ours, and the hand-derived backward passes, vs jax.vjp of the references,
    with ties (the first maximum in row-major order takes the gradient) and overlapping windows."""
    x, dy, geo, window = case["x"], None, geometry(case), case["window"]
    out_shape = jax.eval_shape(lambda x: ref_max(x, case), x).shape
    dy = case["dy"][:, :out_shape[1], :out_shape[2], :]
    if dy.shape != out_shape:     # SAME with stride 1 has the input's size; else pad dy up
        dy = jnp.pad(dy, [(0, o - d) for o, d in zip(out_shape, dy.shape)], constant_values=0.5)

    @fast_jit
    def run(x, dy):
        vjp = lambda f: jax.vjp(f, x)[1](dy)[0]
        return (vjp(lambda x: max_pool2d(x, window, **geo)), vjp(lambda x: ref_max(x, case)),
                max_pool2d_backward(x, dy, window, **geo),
                vjp(lambda x: avg_pool2d(x, window, **geo)), vjp(lambda x: ref_avg(x, case)),
                avg_pool2d_backward(x, dy, window, **geo))

    grad_max, ref_grad_max, hand_max, grad_avg, ref_grad_avg, hand_avg = run(x, dy)
    assert_close(grad_max, ref_grad_max, case)
    assert_close(hand_max, ref_grad_max, case)
    assert_close(grad_avg, ref_grad_avg, case)
    assert_close(hand_avg, ref_grad_avg, case)


@given(pool_cases())
def test_forward_mode_derivatives_match_lax(case):
    """jax.jvp works too (no custom_vjp): the tangent of the window's maximum, as in XLA.

    Tie-free inputs only: at a tie max has no derivative, and XLA's forward mode does not always
    pick the element its reverse mode picks (seen with padding 1, window 2)."""
    x, t = case["x"], case["dy"]
    assume(len(np.unique(np.asarray(x))) == x.size)
    _, ours = jax.jvp(lambda x: max_pool2d(x, case["window"], **geometry(case)), (x,), (t,))
    _, ref = jax.jvp(lambda x: ref_max(x, case), (x,), (t,))
    np.testing.assert_array_equal(ours, ref)


def test_ties_send_the_whole_gradient_to_the_first_maximum():
    """In each window the first maximum in row-major order takes all of dy; a reshape + jnp.max
    pool (another valid subgradient) would split it evenly instead."""
    x = jnp.array([[1., 3., 3., 0.],
                   [3., 0., 0., 0.],
                   [5., 5., 2., 2.],
                   [5., 5., 2., 2.]])[None, :, :, None]
    dy = jnp.array([[1., 2.], [3., 4.]])[None, :, :, None]
    want = np.array([[0, 1, 2, 0],
                     [0, 0, 0, 0],
                     [3, 0, 4, 0],
                     [0, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(max_pool2d_backward(x, dy, 2)[0, :, :, 0], want)
    np.testing.assert_array_equal(jax.vjp(lambda x: max_pool2d(x, 2), x)[1](dy)[0][0, :, :, 0],
                                  want)
    split = jax.vjp(lambda x: x.reshape(1, 2, 2, 2, 2, 1).max((2, 4)), x)[1](dy)[0]
    assert float(split[0, 2, 0, 0]) == 0.75       # 3 shared by four tied 5s


def test_nan_propagates_like_xla():
    x = jnp.array([[1.0, jnp.nan, 0.0, 5.0], [0.0, 2.0, 1.0, 1.0]])[None, :, :, None]
    ours = max_pool2d(x, 2)[0, 0, :, 0]
    lax_max = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    assert np.isnan(ours[0]) and np.isnan(lax_max[0, 0, 0, 0]) and float(ours[1]) == 5.0


def test_overlapping_windows_add_their_gradients():
    """3x3 windows, stride 1, on a 4x4 image with one large pixel: every window holding it
    sends its dy there."""
    x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 2, 0].set(9.0)
    dy = jnp.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    dx = max_pool2d_backward(x, dy, 3, stride=1)
    assert float(dx[0, 1, 2, 0]) == 10.0 and float(dx.sum()) == 10.0


def test_avg_pool_excludes_the_padding_from_the_average():
    x = jnp.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(avg_pool2d(x, 3, stride=1, padding=1), jnp.ones((1, 3, 3, 1)))
    # including the padding, the corner window (4 real pixels of 9) would give 4/9
    included = nnx.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    assert float(included[0, 0, 0, 0]) == pytest.approx(4 / 9)


def test_integer_images_pool_exactly():
    x = jnp.arange(16, dtype=jnp.int32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(max_pool2d(x, 2, padding=1)[0, :, :, 0],
                                  [[0, 2, 3], [8, 10, 11], [12, 14, 15]])
    assert max_pool2d(x, 2).dtype == jnp.int32
    np.testing.assert_allclose(avg_pool2d(x, 2)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 1, 1, 4), (3, 28, 28, 2)])
def test_global_avg_pool_is_the_mean_and_a_full_window_average(shape):
    x = jax.random.normal(jax.random.key(0), shape)
    y = global_avg_pool(x)
    assert y.shape == (shape[0], shape[3])
    np.testing.assert_allclose(y, np.asarray(x).mean(axis=(1, 2)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(global_avg_pool(x, keepdims=True),
                               avg_pool2d(x, shape[1:3]), rtol=1e-6, atol=1e-6)
    grad = jax.grad(lambda x: global_avg_pool(x).sum())(x)
    np.testing.assert_allclose(grad, np.full(shape, 1 / (shape[1] * shape[2])), rtol=1e-6)


def test_pooling_jits_with_static_geometry():
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    f = jax.jit(max_pool2d, static_argnames=("window", "stride", "padding"))
    g = jax.jit(avg_pool2d, static_argnames=("window", "stride", "padding"))
    np.testing.assert_array_equal(f(x, 2), max_pool2d(x, 2))
    np.testing.assert_allclose(g(x, 3, stride=1, padding="SAME"),
                               avg_pool2d(x, 3, stride=1, padding="SAME"), rtol=1e-6)


# --------------------------------------------------------------------------- bad input
X = jnp.zeros((2, 6, 6, 3))
BAD = [
    (lambda: max_pool2d(X, 0), ValueError, r"max_pool2d: window must be >= 1, got 0"),
    (lambda: avg_pool2d(X, (2, -1)), ValueError, r"avg_pool2d: window must be >= 1"),
    (lambda: max_pool2d(X, 7), ValueError,
     r"max_pool2d: the window along H, 7, is larger than the padded input H \+ padding = 6"),
    (lambda: avg_pool2d(X, (2, 7), padding="VALID"), ValueError, r"window along W, 7"),
    (lambda: max_pool2d(X[0], 2), ValueError,
     r"max_pool2d: x must have shape \(N, H, W, C\) = 4 dims, got shape \(6, 6, 3\)"),
    (lambda: avg_pool2d(X, 2, padding=2), ValueError,
     r"avg_pool2d: padding must be smaller than the window .* got padding \(2, 2\) for window 2"),
    (lambda: max_pool2d(X, 2, stride=0), ValueError, r"max_pool2d: stride must be >= 1, got 0"),
    (lambda: max_pool2d(X, 2.0), TypeError, r"max_pool2d: window must be an int or a pair"),
    (lambda: max_pool2d(X, 2, padding="FULL"), ValueError, r"max_pool2d: padding must be"),
    (lambda: max_pool2d([[1.0]], 1), TypeError, r"max_pool2d: x must be an array"),
    (lambda: max_pool2d_backward(X, jnp.zeros((2, 3, 3, 2)), 2), ValueError,
     r"max_pool2d_backward: dy must have the shape of the pooled output \(N, H', W', C\) = "
     r"\(2, 3, 3, 3\), got shape \(2, 3, 3, 2\)"),
    (lambda: avg_pool2d_backward(X, jnp.zeros((2, 3, 3)), 2), ValueError,
     r"avg_pool2d_backward: dy must have shape"),
    (lambda: max_pool2d(jnp.zeros((1, 0, 4, 1)), 2, padding=1), ValueError,
     r"max_pool2d: x must have H, W >= 1, got shape \(1, 0, 4, 1\)"),
    (lambda: max_pool2d(jnp.zeros((1, 4, 4, 1), jnp.complex64), 2), TypeError,
     r"max_pool2d: x must hold real numbers"),
    (lambda: global_avg_pool(jnp.zeros((6, 6))), ValueError,
     r"global_avg_pool: x must have shape \(N, H, W, C\)"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_bad_input_raises_at_trace_time_under_jit():
    with pytest.raises(ValueError, match="max_pool2d: window must be >= 1"):
        jax.jit(lambda x: max_pool2d(x, 0))(X)

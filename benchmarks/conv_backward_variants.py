"""Does a hand-written weight gradient make a whole train step faster on XLA:CPU?

Every stride-1 convolution of the model gets a custom VJP: the forward is XLA's own, dx is a
forward convolution of dy with the flipped, transposed kernel (as fast as XLA's dx), and dw is
  lax-dw:   XLA's own weight gradient (a control: the custom-VJP plumbing alone),
  offsets:  one einsum per kernel tap, dw[a, b] = Σ_{n,h,w} x_pad[n, h+a, w+b, :]ᵀ dy[n, h, w, :],
  im2col:   one matmul of the patches (N·H·W, kh·kw·C_in)ᵀ by dy (N·H·W, C_out),
against XLA's own convolution ("xla") and the model as the library builds it ("strips": since
2026-12-07 its weight gradients are taken in row strips below 8 images, `ops.conv_strips`, and
its first layer, of one input channel, computes shifted copies, `ops.conv_one_channel`).
The first 3 losses are printed (they must agree: the same maths), then img/s of the library's
step (`nnx_step(parts="auto")`), the median of 5 interleaved windows. Question from issue 8:
single layers measured alone showed im2col's dw 2.4x faster than XLA's on 32x64x64x32->64 but
5x slower on 32x64x64x16->16.

    python -m benchmarks.conv_backward_variants MODEL BATCH     # MODEL: fcn8s or tinyfcn
"""
import functools
import sys

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax import lax

from benchmarks import _common
from segen_jax import data
from segen_jax.models import FCN, TinyFCN
from segen_jax.train import nnx_state, nnx_step

DN = ("NHWC", "HWIO", "NHWC")
MODES = ("xla", "lax-dw", "offsets", "im2col", "strips")


def custom_conv(mode):
    """A drop-in for lax.conv_general_dilated (what nnx.Conv calls) whose stride-1, undilated,
    ungrouped case has a custom VJP with the weight gradient of `mode`."""
    @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
    def conv(x, w, pads):
        return lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=DN)

    def forward(x, w, pads):
        return conv(x, w, pads), (x, w)

    def backward(pads, residuals, dy):
        x, w = residuals
        kh, kw = w.shape[:2]
        flipped = jnp.flip(w, (0, 1)).swapaxes(2, 3)
        back = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip((kh, kw), pads))
        dx = lax.conv_general_dilated(dy, flipped, (1, 1), back, dimension_numbers=DN)
        _, ho, wo, co = dy.shape
        xp = jnp.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),))
        taps = [xp[:, a:a + ho, b:b + wo] for a in range(kh) for b in range(kw)]
        if mode == "offsets":
            dw = jnp.stack([jnp.einsum("nhwc,nhwo->co", t, dy) for t in taps]).reshape(w.shape)
        elif mode == "im2col":
            cols = jnp.concatenate(taps, -1).reshape(-1, kh * kw * x.shape[-1])
            dw = (cols.T @ dy.reshape(-1, co)).reshape(w.shape)
        else:
            conv_of_w = lambda v: lax.conv_general_dilated(x, v, (1, 1), pads,
                                                           dimension_numbers=DN)
            dw = jax.vjp(conv_of_w, w)[1](dy)[0]
        return dx, dw

    conv.defvjp(forward, backward)

    def drop_in(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
        if isinstance(padding, str):
            padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
        ones = lambda d: d is None or tuple(d) == (1, 1)
        if (tuple(window_strides) != (1, 1) or feature_group_count != 1
                or not ones(lhs_dilation) or not ones(rhs_dilation)):
            return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                            rhs_dilation, dimension_numbers,
                                            feature_group_count, precision=precision, **kwargs)
        return conv(lhs, rhs, tuple((int(lo), int(hi)) for lo, hi in padding))
    return drop_in


def cross_entropy(model, batch, key):
    images, labels = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(images), labels).mean(), {}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    name, batch = argv[0], int(argv[1])
    print(_common.environment())
    images, labels = data.digit_scenes(4 * batch, seed=0)
    batches = [(jnp.asarray(images[i::4]), jnp.asarray(labels[i::4])) for i in range(4)]
    steps, states, losses = {}, {}, {}
    for mode in MODES:
        model = FCN(11, "8s", rngs=nnx.Rngs(0)) if name == "fcn8s" else TinyFCN(11, rngs=nnx.Rngs(0))
        if mode != "strips":       # "strips": as the library builds it (ops.conv_strips)
            for _, module in nnx.iter_graph(model):
                if isinstance(module, nnx.Conv):
                    module.conv_general_dilated = (lax.conv_general_dilated if mode == "xla"
                                                   else custom_conv(mode))
        graphdef, states[mode] = nnx_state(model, nnx.Optimizer(model, optax.adam(1e-3),
                                                                wrt=nnx.Param))
        steps[mode] = nnx_step(graphdef, cross_entropy, parts="auto")
        losses[mode] = []
        for b in batches[:3]:
            states[mode], metrics = steps[mode](states[mode], b)
            losses[mode].append(float(metrics["loss"]))
    worst = max(abs(a - b) for m in MODES for a, b in zip(losses[m], losses["xla"]))
    assert worst <= 1e-4, losses
    print(f"first 3 losses agree to {worst:.1e}: {losses['xla']}")

    def runner(mode):
        def run(n):
            for i in range(n):
                states[mode], metrics = steps[mode](states[mode], batches[i % 4])
            jax.block_until_ready((metrics, states[mode]))
        return run

    runs = {mode: runner(mode) for mode in MODES}
    _common.load_now()
    per = _common.interleaved_windows(runs, {m: max(3, 96 // batch) for m in MODES}, repeats=5)
    load = _common.load_now()
    rows = [[m, f"{batch / _common.median(v):.0f}", _common.spread(v)] for m, v in per.items()]
    print(f"\n{name}, batch {batch}; {load}\n")
    print(_common.table(["weight gradient", "img/s", "spread"], rows))


if __name__ == "__main__":
    main()

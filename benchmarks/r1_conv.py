"""R1's second-order pass through the DCGAN discriminator's convolutions: XLA's convolution vs
segen_jax.ops.conv2d_im2col (one matrix product), one layer at a time (issue 8).

For a conv layer f(x, w) (4x4, stride 2, padding 1, NHWC/HWIO) and a fixed cotangent v (what
D's later layers send back), R1's part through the layer is

    r(w) = ‖∇_x ⟨f(x, w), v⟩‖²,   timed: jax.jit(jax.value_and_grad(r)) over w,

i.e. the input gradient (a transposed convolution) and then the gradient of its square norm
with respect to w, the second-order term that gan_step(r1_weight > 0) adds to D's update.
XLA:CPU runs that weight gradient as a `convolution-base-dilated` with a reversed kernel, on
its generic kernel; in the im2col form every derivative is a matrix product or a pad/slice.
The layers are D's (batch 16, the recipe's R1 samples): conv1 28x28x1 -> 14x14x32 and conv2
14x14x32 -> 7x7x64. Before timing: the values and gradients of both forms agree to 1e-5
relative (max |diff| / max |ref|). Timing: _common's interleaved windows, median.

    python -m benchmarks.r1_conv [--repeats 7] [--window 0.3]
"""
import argparse
import json

import jax
import jax.numpy as jnp
from jax import lax

from benchmarks import _common
from segen_jax.ops import conv2d_im2col

TOL = 1e-5
LAYERS = {"conv1": ((16, 28, 28, 1), (4, 4, 1, 32)), "conv2": ((16, 14, 14, 32), (4, 4, 32, 64))}
FORMS = {
    "xla": lambda x, w: lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)),
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")),
    "im2col": lambda x, w: conv2d_im2col(x, w, stride=2, padding=1),
}


def r1_part(conv):
    """jit(value_and_grad over w of ‖∇_x⟨conv(x, w), v⟩‖²)."""
    def r(w, x, v):
        return jnp.sum(jax.grad(lambda x_: jnp.sum(conv(x_, w) * v))(x) ** 2)
    return jax.jit(jax.value_and_grad(r))


def measure(name, repeats, window):
    x_shape, w_shape = LAYERS[name]
    x = jax.random.normal(jax.random.key(0), x_shape)
    w = 0.05 * jax.random.normal(jax.random.key(1), w_shape)
    v = jax.random.normal(jax.random.key(2), FORMS["xla"](x, w).shape)
    fns = {form: r1_part(conv) for form, conv in FORMS.items()}
    (ref, ref_grad), (got, got_grad) = fns["xla"](w, x, v), fns["im2col"](w, x, v)
    value_diff = float(abs(got - ref) / abs(ref))
    grad_diff = float(jnp.max(jnp.abs(got_grad - ref_grad)) / jnp.max(jnp.abs(ref_grad)))
    assert value_diff < TOL and grad_diff < TOL, (name, value_diff, grad_diff)

    def runner(fn):
        def run(n):
            for _ in range(n):
                out = fn(w, x, v)
            jax.block_until_ready(out)
        return run
    runs = {form: runner(fn) for form, fn in fns.items()}
    steps = {k: _common.calibrate(r, target_s=window, minimum=2) for k, r in runs.items()}
    per = _common.interleaved_windows(runs, steps, repeats=repeats)
    ms = {k: 1e3 * _common.median(v) for k, v in per.items()}
    return {"layer": name, "x": list(x_shape), "w": list(w_shape),
            "xla_ms": round(ms["xla"], 2), "im2col_ms": round(ms["im2col"], 2),
            "speedup": round(ms["xla"] / ms["im2col"], 2),
            "value_rel_diff": value_diff, "grad_rel_diff": grad_diff}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--window", type=float, default=0.3, help="seconds per timed window")
    args = parser.parse_args(argv)
    load = _common.load_now()
    for name in LAYERS:
        print(json.dumps({**measure(name, args.repeats, args.window), "load": load}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""XLA:CPU's YNNPACK fusions on and off: single layers of the course's models, forward and
forward+backward, under three compiler options, in one process. The convolutions are XLA's
(`lax.conv_general_dilated`, what nnx.Conv calls); `ops.conv_transpose2d` (the library's
transposed convolution, ConvTranspose) is written with einsums, i.e. matrix products.

  defaults    compiler_options=None: XLA's defaults (jaxlib 0.10.2 hands matrix products and
              convolutions to YNNPACK)
  cpu_options train.CPU_OPTIONS: YNNPACK for matrix products only, XLA's own convolutions
  none        {"xla_cpu_experimental_ynn_fusion_type": ""}: no YNNPACK fusion at all

Each case is jax.jit(f, compiler_options=...) of the forward f(x, w) and of
jax.value_and_grad(sum(tanh(f(x, w)))) in x and w; before timing, every option's values and
gradients are checked against the defaults' (relative difference <= TOL). "threads" is the
process's CPU time over the wall time of the windows: how many cores the op kept busy.
Timing: _common's interleaved windows, median.

    python -m benchmarks.xla_cpu_options [--repeats 5] [--window 0.5] [--write]

Results and what the library does with them: RESULTS_xla_cpu.md (--write puts the table there,
between its <!-- xla-cpu-options results --> markers).
"""
import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _common
from segen_jax import ops
from segen_jax.train import CPU_OPTIONS

OPTIONS = {"defaults": None, "cpu_options": CPU_OPTIONS,
           "none": {"xla_cpu_experimental_ynn_fusion_type": ""}}
TOL = 1e-4
RESULTS = pathlib.Path(__file__).parent / "RESULTS_xla_cpu.md"
BEGIN, END = "<!-- xla-cpu-options results -->", "<!-- end of xla-cpu-options results -->"
CASES = [  # name, f(x, w), x shape, w shape
    ("FCN block: conv 3x3 64→64, batch 32 of 32x32",
     lambda x, w: _conv(x, w, 1, "SAME"), (32, 32, 32, 64), (3, 3, 64, 64)),
    ("FCN-8s block 1: conv 3x3 16→16, batch 4 of 64x64",
     lambda x, w: _conv(x, w, 1, "SAME"), (4, 64, 64, 16), (3, 3, 16, 16)),
    ("DCGAN D: conv 4x4/2 32→64, batch 64 of 14x14",
     lambda x, w: _conv(x, w, 2, ((1, 1), (1, 1))), (64, 14, 14, 32), (4, 4, 32, 64)),
    ("VAE encoder: conv 3x3/2 32→64, batch 8 of 14x14 (one of 8 parts)",
     lambda x, w: _conv(x, w, 2, "SAME"), (8, 14, 14, 32), (3, 3, 32, 64)),
    ("VAE decoder: ops.conv_transpose2d 4x4/2 64→32 (einsums), batch 8 of 7x7",
     lambda x, w: ops.conv_transpose2d(x, w, stride=2, padding=1), (8, 7, 7, 64),
     (4, 4, 32, 64)),
    ("VAE dense 3136→64, batch 8", lambda x, w: x @ w, (8, 3136), (3136, 64)),
]


def _conv(x, w, stride, padding):
    """What nnx.Conv computes: XLA's convolution, NHWC / HWIO."""
    return jax.lax.conv_general_dilated(x, w, (stride, stride), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _runner(fn, x, w):
    def run(n):
        for _ in range(n):
            out = fn(x, w)
        jax.block_until_ready(out)
    return run


def _check(name, results):
    ref = jax.tree.leaves(results["defaults"])
    for option, value in results.items():
        for a, b in zip(ref, jax.tree.leaves(value)):
            err = float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(a)), 1e-30))
            assert err <= TOL, f"{name}: {option} differs from XLA's defaults by {err:.1e}"


def measure(repeats, window):
    rows = []
    key = jax.random.key(0)
    for name, f, x_shape, w_shape in CASES:
        kx, kw = jax.random.split(jax.random.fold_in(key, len(rows)))
        x = jax.random.normal(kx, x_shape)
        w = jax.random.normal(kw, w_shape) / np.sqrt(np.prod(w_shape[:-1]))
        both = jax.value_and_grad(lambda x, w: jnp.sum(jnp.tanh(f(x, w))), argnums=(0, 1))
        for what, g in (("forward", f), ("forward+backward", both)):
            fns = {o: jax.jit(g, compiler_options=v) for o, v in OPTIONS.items()}
            _check(f"{name} {what}", {o: fn(x, w) for o, fn in fns.items()})
            runs = {o: _runner(fn, x, w) for o, fn in fns.items()}
            steps = {o: _common.calibrate(r, target_s=window, minimum=2) for o, r in runs.items()}
            threads = {}
            for o, run in runs.items():           # threads: one window each, alone
                t, c = time.perf_counter(), _common._cpu_seconds()[1]
                run(steps[o])
                threads[o] = (_common._cpu_seconds()[1] - c) / (time.perf_counter() - t)
            per = _common.interleaved_windows(runs, steps, repeats=repeats)
            ms = {o: 1e3 * _common.median(v) for o, v in per.items()}
            rows.append([name, what, *(f"{ms[o]:.2f} ({threads[o]:.1f})" for o in OPTIONS),
                         f"{ms['defaults'] / ms['cpu_options']:.2f}x"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    _common.load_now()
    rows = measure(args.repeats, args.window)
    header = ["case", "pass", "defaults ms (threads)", "cpu_options ms (threads)",
              "none ms (threads)", "cpu_options speed-up"]
    text = "\n\n".join([_common.environment(), _common.table(header, rows), _common.load_now()])
    print(text)
    if args.write:
        head, rest = RESULTS.read_text().split(BEGIN, 1)
        RESULTS.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

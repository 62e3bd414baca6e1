"""2-D pooling on CPU: segen_jax's strided-view pooling vs XLA's reduce_window and PyTorch.

Variants, float32 on the same data, forward and forward+backward (d input):
  segen      segen_jax.ops.max_pool2d / avg_pool2d (k·k strided views; running max that keeps
             the first maximum on ties, so jax.grad routes like XLA)
  lax        jax.lax.reduce_window (max: −∞ init; avg: window sum / window count of ones),
             what flax.nnx.max_pool / avg_pool(count_include_pad=False) call
  reshape    max only, windows that tile the image: x.reshape(N, H/k, k, W/k, k, C).max((2, 4));
             its gradient splits ties evenly (another subgradient), so only its speed is shown
  torch      torch.nn.functional.max_pool2d / avg_pool2d(count_include_pad=False), NCHW
  torch_cl   the same on channels_last tensors

JAX: jax.jit(f) forward; jax.jit(jax.grad(lambda x, r: (f(x) * r).sum())) forward+backward.
PyTorch: forward under no_grad, forward+backward = torch.autograd.grad(y, x, grad_outputs=r).
Before timing, every variant is checked against lax (forward and d x; tie-free random input,
so the reshape variant's gradient agrees too). Timing: _common's interleaved windows, median;
"÷ torch" is the variant's speed over torch NCHW's (> 1: faster).

    python -m benchmarks.pool [--repeats 5] [--window 0.5]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _common
from segen_jax.ops import avg_pool2d, max_pool2d

TOL = 1e-5
SHAPES = [  # name, N, H=W, C, k, stride, padding
    ("classifier: batch 64, 28x28x16, 2x2 stride 2", 64, 28, 16, 2, 2, 0),
    ("FCN block: batch 32, 64x64x64, 2x2 stride 2", 32, 64, 64, 2, 2, 0),
    ("overlapping: batch 32, 56x56x64, 3x3 stride 2 padding 1", 32, 56, 64, 3, 2, 1),
]


def jax_variants(kind, k, s, p):
    window, strides, pads = (1, k, k, 1), (1, s, s, 1), [(0, 0), (p, p), (p, p), (0, 0)]
    if kind == "max":
        out = {"segen": lambda x: max_pool2d(x, k, stride=s, padding=p),
               "lax": lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides,
                                                      pads)}
        if k == s and p == 0:
            out["reshape"] = lambda x: x.reshape(x.shape[0], x.shape[1] // k, k,
                                                 x.shape[2] // k, k, x.shape[3]).max((2, 4))
        return out
    total = lambda v: jax.lax.reduce_window(v, 0.0, jax.lax.add, window, strides, pads)
    return {"segen": lambda x: avg_pool2d(x, k, stride=s, padding=p),
            "lax": lambda x: total(x) / total(jnp.ones_like(x))}


def build(torch, kind, x, r, k, s, p):
    """{variant: (fwd(), fwdbwd())}, outputs as NHWC numpy-comparable arrays."""
    out = {}
    xj, rj = jnp.asarray(x), jnp.asarray(r)
    for name, f in jax_variants(kind, k, s, p).items():
        fwd = jax.jit(f)
        bwd = jax.jit(jax.grad(lambda x, r, f=f: (f(x) * r).sum()))
        out[name] = (lambda fwd=fwd: fwd(xj), lambda bwd=bwd: bwd(xj, rj))
    F = torch.nn.functional
    pool = (lambda t: F.max_pool2d(t, k, s, p)) if kind == "max" else \
        (lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=False))
    for name, fmt in (("torch", torch.contiguous_format), ("torch_cl", torch.channels_last)):
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
        rt = torch.from_numpy(r.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
        xt.requires_grad_()

        def fwd(xt=xt):
            with torch.no_grad():
                return pool(xt)

        def bwd(xt=xt, rt=rt):
            return torch.autograd.grad(pool(xt), xt, grad_outputs=rt)[0]
        out[name] = (fwd, bwd)
    return out


def as_nhwc(name, a):
    return a.detach().numpy().transpose(0, 2, 3, 1) if name.startswith("torch") else np.asarray(a)


def check(fns):
    ref_y, ref_dx = np.asarray(fns["lax"][0]()), np.asarray(fns["lax"][1]())
    for name, (fwd, bwd) in fns.items():
        for got, want, what in ((as_nhwc(name, fwd()), ref_y, "y"),
                                (as_nhwc(name, bwd()), ref_dx, "dx")):
            err = float(np.abs(got - want).max())
            assert err < TOL, f"{name} disagrees with lax on {what}: max |diff| = {err:.2e}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing windows per row")
    parser.add_argument("--window", type=float, default=0.5, help="seconds per window")
    args = parser.parse_args(argv)
    import torch
    t0 = time.perf_counter()
    print("## 2-D pooling: segen_jax vs lax.reduce_window vs PyTorch (benchmarks/pool.py)\n")
    print(_common.environment(extra=("torch",)))
    print(f"- torch.get_num_threads() = {torch.get_num_threads()}; float32; repeats "
          f"{args.repeats}, window {args.window} s\n", flush=True)
    rng = np.random.default_rng(0)
    for title, n, hw, c, k, s, p in SHAPES:
        x = rng.normal(size=(n, hw, hw, c)).astype(np.float32)
        ho = (hw + 2 * p - k) // s + 1
        r = rng.normal(size=(n, ho, ho, c)).astype(np.float32)
        for kind in ("max", "avg"):
            fns = build(torch, kind, x, r, k, s, p)
            check(fns)
            runs = {(name, which): _common.call_runner(fn, not name.startswith("torch"))
                    for name, pair in fns.items() for which, fn in zip(("fwd", "bwd"), pair)}
            _common.load_now()
            steps = {key: _common.calibrate(run, target_s=args.window, minimum=1)
                     for key, run in runs.items()}
            per = _common.interleaved_windows(runs, steps, repeats=args.repeats)
            load = _common.load_now()
            med = {key: _common.median(v) for key, v in per.items()}
            rows = []
            for name in fns:
                cells = [name]
                for which in ("fwd", "bwd"):
                    t = med[(name, which)]
                    cells += [f"{1e3 * t:.2f}", f"{med[('torch', which)] / t:.2f}",
                              _common.spread(per[(name, which)])]
                rows.append(cells)
            print(f"### {kind} pool, {title}\n\n{load}\n")
            print(_common.table(["variant", "fwd ms", "fwd ÷ torch", "fwd spread",
                                 "fwd+bwd ms", "fwd+bwd ÷ torch", "fwd+bwd spread"], rows))
            print(flush=True)
    print(f"Total {time.perf_counter() - t0:.0f} s; load average at the end: "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

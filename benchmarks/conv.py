"""2-D convolution on CPU: segen_jax's direct and im2col convs vs XLA's and PyTorch's.

Variants, all float32 on the same data, forward and forward+backward (d input, d weight):
  direct   segen_jax.ops.conv2d          (pad + one einsum per kernel offset), NHWC/HWIO
  im2col   segen_jax.ops.conv2d_im2col   (im2col + one matmul), NHWC/HWIO
  lax      jax.lax.conv_general_dilated  (XLA's own convolution), NHWC/HWIO
  torch    torch.nn.functional.conv2d    NCHW (contiguous)
  torch_cl torch.nn.functional.conv2d    NCHW tensors in channels_last memory format

JAX: jax.jit(f) for forward; jax.jit(jax.grad(lambda x, w, r: (f(x, w) * r).sum(),
argnums=(0, 1))) for forward+backward (r, a fixed random cotangent, is passed as an argument
rather than closed over so that it is not baked into the executable as a constant); every
timed call ends in jax.block_until_ready. PyTorch: forward under no_grad;
forward+backward = torch.autograd.grad(y, (x, w), grad_outputs=r) (the same maths).

GFLOP/s counts 2·N·H'·W'·kh·kw·C_in·C_out per forward and 3× that for forward+backward.
Timing: _common's interleaved windows (round-robin over all variants and both passes), the
median is reported; "÷ torch" is the variant's speed over torch NCHW's (> 1: faster).
Before timing, each shape checks that all variants agree with lax (forward, d x, d w) to
1e-3 relative (max |diff| / max |ref|).

    python -m benchmarks.conv [--repeats 5] [--window 0.5] [--big-batch 16]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _common
from segen_jax.ops import conv2d, conv2d_im2col

TOL = 1e-3
VARIANTS = ("direct", "im2col", "lax", "torch", "torch_cl")


def shapes(big_batch):
    # name, N, H=W, C_in, C_out, k, padding, dilation
    return [
        ("A: batch 32, 64x64x32 -> 64, 3x3, pad 1", 32, 64, 32, 64, 3, 1, 1),
        ("B: batch 64, 28x28x1 -> 32, 3x3, pad 1", 64, 28, 1, 32, 3, 1, 1),
        (f"C: batch {big_batch}, 128x128x64 -> 64, 3x3, dilation 2, pad 2",
         big_batch, 128, 64, 64, 3, 2, 2),
    ]


def jax_fns(pad, dil):
    def lax_conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), [(pad, pad), (pad, pad)],
                                            rhs_dilation=(dil, dil),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return {
        "direct": lambda x, w: conv2d(x, w, padding=pad, dilation=dil),
        "im2col": lambda x, w: conv2d_im2col(x, w, padding=pad, dilation=dil),
        "lax": lax_conv,
    }


def build(torch, x, w, r, pad, dil):
    """{variant: (fwd(), fwdbwd())} closures returning outputs (NHWC / HWIO numpy-comparable)."""
    out = {}
    xj, wj, rj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(r)
    for name, f in jax_fns(pad, dil).items():
        fwd = jax.jit(f)
        bwd = jax.jit(jax.grad(lambda x, w, r, f=f: (f(x, w) * r).sum(), argnums=(0, 1)))
        out[name] = (lambda fwd=fwd: fwd(xj, wj), lambda bwd=bwd: bwd(xj, wj, rj))
    F = torch.nn.functional
    for name, fmt in (("torch", torch.contiguous_format), ("torch_cl", torch.channels_last)):
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
        wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).contiguous(memory_format=fmt)
        rt = torch.from_numpy(r.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
        xt.requires_grad_()
        wt.requires_grad_()

        def fwd(xt=xt, wt=wt):
            with torch.no_grad():
                return F.conv2d(xt, wt, padding=pad, dilation=dil)

        def bwd(xt=xt, wt=wt, rt=rt):
            y = F.conv2d(xt, wt, padding=pad, dilation=dil)
            return torch.autograd.grad(y, (xt, wt), grad_outputs=rt)
        out[name] = (fwd, bwd)
    return out


def to_nhwc(name, a, kind):
    """An output of variant `name` as a numpy array in JAX's layout (kind: y, dx or dw)."""
    if name.startswith("torch"):
        a = a.detach().numpy()
        return a.transpose(2, 3, 1, 0) if kind == "dw" else a.transpose(0, 2, 3, 1)
    return np.asarray(a)


def check(fns):
    """Max relative difference (max |a − ref| / max |ref|) of each variant vs lax, per output."""
    ref_y = np.asarray(fns["lax"][0]())
    ref_dx, ref_dw = (np.asarray(a) for a in fns["lax"][1]())
    errs = {}
    for name, (fwd, bwd) in fns.items():
        y = to_nhwc(name, fwd(), "y")
        dx, dw = bwd()
        dx, dw = to_nhwc(name, dx, "dx"), to_nhwc(name, dw, "dw")
        e = [float(np.abs(a - b).max() / np.abs(b).max())
             for a, b in ((y, ref_y), (dx, ref_dx), (dw, ref_dw))]
        errs[name] = e
        assert max(e) < TOL, f"{name} disagrees with lax: rel err (y, dx, dw) = {e}"
    return errs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing windows per row")
    parser.add_argument("--window", type=float, default=0.5, help="seconds per window")
    parser.add_argument("--big-batch", type=int, default=16,
                        help="batch of shape C (the issue's 16; lower it on a slow machine)")
    args = parser.parse_args(argv)
    import torch
    t0 = time.perf_counter()
    print("## 2-D convolution: segen_jax direct / im2col vs lax vs PyTorch (benchmarks/conv.py)\n")
    print(_common.environment(extra=("torch",)))
    print(f"- torch.get_num_threads() = {torch.get_num_threads()}; XLA:CPU uses its own pool "
          f"over {os.cpu_count()} cores; float32; repeats {args.repeats}, window {args.window} s\n",
          flush=True)
    rng = np.random.default_rng(0)
    for title, n, hw, cin, cout, k, pad, dil in shapes(args.big_batch):
        x = rng.normal(size=(n, hw, hw, cin)).astype(np.float32)
        w = (rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(np.float32)
        ho = hw + 2 * pad - dil * (k - 1)
        r = rng.normal(size=(n, ho, ho, cout)).astype(np.float32)
        flops = 2 * n * ho * ho * k * k * cin * cout
        fns = build(torch, x, w, r, pad, dil)
        tc = time.perf_counter()
        errs = check(fns)   # also compiles and warms up every variant
        tc = time.perf_counter() - tc
        runs, steps = {}, {}
        for name, (fwd, bwd) in fns.items():
            for kind, fn in (("fwd", fwd), ("bwd", bwd)):
                runs[(name, kind)] = _common.call_runner(fn, not name.startswith("torch"))
        _common.load_now()
        for key, run in runs.items():
            steps[key] = _common.calibrate(run, target_s=args.window, minimum=1)
        per = _common.interleaved_windows(runs, steps, repeats=args.repeats)
        load = _common.load_now()
        med = {key: _common.median(v) for key, v in per.items()}
        rows = []
        for name in VARIANTS:
            cells = [name]
            for kind, mult in (("fwd", 1), ("bwd", 3)):
                s = med[(name, kind)]
                gf = mult * flops / s / 1e9
                ref = mult * flops / med[("torch", kind)] / 1e9
                cells += [f"{1e3 * s:.2f}", f"{gf:.1f}", f"{gf / ref:.2f}",
                          _common.spread(per[(name, kind)])]
            cells.append(f"{max(errs[name]):.1e}")
            rows.append(cells)
        print(f"### {title}\n")
        print(f"{flops / 1e9:.3f} GFLOP per forward (×3 for fwd+bwd); check + compile "
              f"{tc:.1f} s; {load}\n")
        print(_common.table(["variant", "fwd ms", "fwd GFLOP/s", "fwd ÷ torch", "fwd spread",
                             "fwd+bwd ms", "fwd+bwd GFLOP/s", "fwd+bwd ÷ torch",
                             "fwd+bwd spread", "max rel err vs lax (y, dx, dw)"], rows))
        print(flush=True)
    print(f"Total {time.perf_counter() - t0:.0f} s; load average at the end: "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

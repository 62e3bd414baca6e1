"""Winograd's F(2x2, 3x3) convolution against XLA's on the models' 3x3 layers: the row that says
why the library's stride-1 3x3 convolutions stay XLA's on the CPU.

    python -m benchmarks.conv_winograd            # ~2 min on 2 cores

Winograd's minimal filtering (Lavin & Gray 2016) computes each 2x2 block of outputs of a 3x3,
stride-1 convolution from the 4x4 input tile d under it, per input channel c and output
channel o, as
    Y = Aᵀ [ Σ_c (G g_{c,o} Gᵀ) ⊙ (Bᵀ d_c B) ] A,
with g the 3x3 kernel and the fixed matrices
    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],
    G  = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]],      Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
The channel sum becomes 16 matrix products (one per tile position), (tiles, C_in) @ (C_in,
C_out), 16 multiplications per 2x2 outputs where the direct sum takes 36: 2.25x fewer. Here
the tiles are cut by reshapes and contiguous slices (no strided slices, whose gradients are
scatters), and the gradients are JAX's derivatives of that computation.

Each layer ("SAME" padding, NHWC/HWIO, float32, jitted alone with `train.CPU_OPTIONS`): the
forward pass, and forward + backward (∂L/∂x and ∂L/∂w for a fixed cotangent), XLA's
(`lax.conv_general_dilated`), Winograd's and PyTorch's (channels_last); all checked equal to
XLA's (relative 1e-4), then ms per call, the median of --repeats interleaved windows.
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import _common
from segen_jax.train import CPU_OPTIONS

# (N, H = W, C_in, C_out): TinyFCN's layers at 8 images (one part of a batch of 32 or the
# strips' batch), and the classifier's second layer at its batch of 64
LAYERS = [(8, 64, 16, 16), (8, 32, 16, 32), (8, 32, 32, 32), (8, 64, 32, 16), (64, 14, 32, 32)]
DN = ("NHWC", "HWIO", "NHWC")
TOL = 1e-4
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)


def _b_transposed(r0, r1, r2, r3):
    """Bᵀ applied along one axis of the 4x4 tiles, given its 4 rows (or columns)."""
    return r0 - r2, r1 + r2, r2 - r1, r1 - r3


def _tile_rows(x, axis):
    """The 4 rows 2i, 2i+1, 2i+2, 2i+3 (i = 0 … L/2 − 2) of x along `axis` (length L, even), by
    a reshape into pairs and contiguous slices."""
    length = x.shape[axis]
    pairs = x.reshape(x.shape[:axis] + (length // 2, 2) + x.shape[axis + 1:])
    take = lambda first, j: lax.slice_in_dim(lax.index_in_dim(pairs, j, axis + 1, False),
                                             first, first + length // 2 - 1, axis=axis)
    return take(0, 0), take(0, 1), take(1, 0), take(1, 1)


def winograd_conv3x3(x, w):
    """y = x ⋆ w, "SAME" padding, stride 1, by F(2x2, 3x3) (module docstring).
    x (N, H, W, C_in) with H, W even; w (3, 3, C_in, C_out); y (N, H, W, C_out)."""
    n, h, wd, c = x.shape
    if w.shape[:2] != (3, 3) or h % 2 or wd % 2:
        raise ValueError(f"winograd_conv3x3: needs a 3x3 kernel and even H, W; got x {x.shape}, "
                         f"w {w.shape}")
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    tiles = []
    for rows in _b_transposed(*_tile_rows(padded, 1)):          # (N, H/2, W + 2, C_in) each
        tiles.extend(_b_transposed(*_tile_rows(rows, 2)))       # (N, H/2, W/2, C_in) each
    u = jnp.stack(tiles).reshape(16, -1, c)
    v = jnp.einsum("ai,ijco,bj->abco", G, w, G).reshape(16, c, w.shape[-1])
    m = lax.dot_general(u, v, (((2,), (1,)), ((0,), (0,))))     # (16, tiles, C_out)
    m = m.reshape(4, 4, n, h // 2, wd // 2, -1)
    along_rows = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])        # Aᵀ · along the rows
    blocks = [[r[0] + r[1] + r[2], r[1] - r[2] - r[3]] for r in along_rows]   # · A
    y = jnp.stack([jnp.stack(pair, axis=3) for pair in blocks], axis=2)   # (N, H/2, 2, W/2, 2, O)
    return y.reshape(n, h, wd, -1)


def xla_conv3x3(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)


def _jax_runs(conv, x, w, dy):
    forward = jax.jit(conv, compiler_options=CPU_OPTIONS)
    backward = jax.jit(lambda x, w, dy: jax.vjp(conv, x, w)[1](dy), compiler_options=CPU_OPTIONS)
    return (lambda: forward(x, w)), (lambda: backward(x, w, dy))


def _torch_runs(torch, x, w, dy):
    cl = torch.channels_last
    xt = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()).contiguous(memory_format=cl)
    wt = torch.from_numpy(np.asarray(w).transpose(3, 2, 0, 1).copy()).contiguous(memory_format=cl)
    dyt = torch.from_numpy(np.asarray(dy).transpose(0, 3, 1, 2).copy()).contiguous(memory_format=cl)
    xt.requires_grad_()
    wt.requires_grad_()

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, padding=1)

    def backward():
        y = torch.nn.functional.conv2d(xt, wt, padding=1)
        return torch.autograd.grad(y, (xt, wt), grad_outputs=dyt)
    return forward, backward


def _relative(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def check(x, w, dy, torch):
    """Max relative difference to XLA's (y, ∂L/∂x, ∂L/∂w) of Winograd's and PyTorch's."""
    reference = [xla_conv3x3(x, w), *jax.vjp(xla_conv3x3, x, w)[1](dy)]
    mine = [winograd_conv3x3(x, w), *jax.vjp(winograd_conv3x3, x, w)[1](dy)]
    fwd, bwd = _torch_runs(torch, x, w, dy)
    to_nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1)
    dxt, dwt = bwd()
    theirs = [to_nhwc(fwd()), to_nhwc(dxt), dwt.detach().numpy().transpose(2, 3, 1, 0)]
    errors = {"winograd": max(map(_relative, mine, reference)),
              "torch_cl": max(map(_relative, theirs, reference))}
    for name, error in errors.items():
        if not error < TOL:
            raise AssertionError(f"{name} disagrees with XLA's convolution: max relative "
                                 f"difference {error:.2e} (tolerance {TOL})")
    return errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing windows per row")
    parser.add_argument("--window", type=float, default=0.5, help="seconds per window")
    args = parser.parse_args(argv)
    import torch
    print("## Winograd F(2x2, 3x3) vs XLA's convolution (benchmarks/conv_winograd.py)\n")
    print(_common.environment(extra=("torch",)))
    print(f"- torch.get_num_threads() = {torch.get_num_threads()}; float32; "
          f"train.CPU_OPTIONS; {args.repeats} windows of {args.window} s\n", flush=True)
    rows = []
    for n, size, c_in, c_out in LAYERS:
        keys = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(keys[0], (n, size, size, c_in))
        w = jax.random.normal(keys[1], (3, 3, c_in, c_out)) / np.sqrt(9 * c_in)
        dy = jax.random.normal(keys[2], (n, size, size, c_out))
        errors = check(x, w, dy, torch)
        runs = {}
        for name, (fwd, bwd) in (("xla", _jax_runs(xla_conv3x3, x, w, dy)),
                                 ("winograd", _jax_runs(winograd_conv3x3, x, w, dy)),
                                 ("torch_cl", _torch_runs(torch, x, w, dy))):
            runs[name, "fwd"] = _common.call_runner(fwd, name != "torch_cl")
            runs[name, "bwd"] = _common.call_runner(bwd, name != "torch_cl")
        _common.load_now()
        rate, spread = _common.rates(runs, repeats=args.repeats, target_s=args.window, minimum=1)
        ms = {key: 1e3 / r for key, r in rate.items()}
        load = _common.load_now()
        for kind, label in (("fwd", "forward"), ("bwd", "forward + backward")):
            rows.append([f"{n}x{size}x{size}, {c_in} → {c_out}", label,
                         *(f"{ms[name, kind]:.2f} ({spread[name, kind]})"
                           for name in ("xla", "winograd", "torch_cl")),
                         f"{ms['winograd', kind] / ms['xla', kind]:.2f}",
                         f"{errors['winograd']:.1e}"])
        print(f"- {n}x{size}x{size}, {c_in} → {c_out}: {load}", flush=True)
    print()
    print(_common.table(["layer (N x H x W, C_in → C_out)", "pass", "XLA ms", "Winograd ms",
                         "PyTorch channels_last ms", "Winograd ÷ XLA (time)",
                         "Winograd's max rel. diff"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

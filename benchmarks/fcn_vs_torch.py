"""FCN-8s (and TinyFCN) train step: segen_jax against the same network in PyTorch eager, on CPU.

Networks: segen_jax.models.FCN(11, "8s") (958,215 parameters at width 16) and TinyFCN(11), and
their PyTorch twins built here layer for layer (Conv2d 'same', MaxPool2d(2), ConvTranspose2d
k4 s2 p1, 1x1 score convs, F.interpolate(mode="bilinear", align_corners=False) for the fixed
upsampling, which is segen_jax.ops.bilinear_upsample's half-pixel rule). Batch 32 of 64x64x1
digit scenes, 11 classes, per-pixel softmax cross-entropy, Adam(lr 1e-3).

Checked first: equal parameter counts; with the JAX parameters copied into PyTorch, the logits
agree and the first Adam-step losses agree. Then timed: the library's compiled step
(recipes.RECIPES[...].build, i.e. segen_jax.train.nnx_step, state donated) against PyTorch
eager NCHW and channels_last; median of interleaved windows after warm-up.

    python -m benchmarks.fcn_vs_torch [--models fcn8s,tinyfcn] [--repeats 5] [--window 1.0]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import _common
from benchmarks.classifier_vs_torch import TorchStep
from segen_jax import data
from segen_jax.recipes import RECIPES

BATCH = 32
CHECK_STEPS = 3
CHECK_TOL = 2e-4   # float32 convolutions sum in other orders in XLA and oneDNN


def torch_fcn8s(torch, width=16, k=11):
    nn = torch.nn
    widths = [1, width, 2 * width, 4 * width, 8 * width, 8 * width]

    class FCN8s(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1), nn.ReLU(),
                nn.Conv2d(widths[i + 1], widths[i + 1], 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2)) for i in range(5)])
            self.fc6 = nn.Conv2d(8 * width, 16 * width, 3, padding=1)
            self.fc7 = nn.Conv2d(16 * width, 16 * width, 1)
            self.score = nn.Conv2d(16 * width, k, 1)
            self.up16 = nn.ConvTranspose2d(k, k, 4, stride=2, padding=1)
            self.score_pool4 = nn.Conv2d(8 * width, k, 1)
            self.up8 = nn.ConvTranspose2d(k, k, 4, stride=2, padding=1)
            self.score_pool3 = nn.Conv2d(4 * width, k, 1)

        def forward(self, x):
            pools = []
            for block in self.blocks:
                x = block(x)
                pools.append(x)
            score = self.score(torch.relu(self.fc7(torch.relu(self.fc6(x)))))
            score = self.up16(score) + self.score_pool4(pools[3])
            score = self.up8(score) + self.score_pool3(pools[2])
            return torch.nn.functional.interpolate(score, scale_factor=8, mode="bilinear",
                                                   align_corners=False)
    return FCN8s()


def torch_tinyfcn(torch, width=16, k=11):
    nn = torch.nn

    class TinyFCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
            self.enc2 = nn.Sequential(nn.MaxPool2d(2),
                                      nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU())
            self.up = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
            self.fuse = nn.Conv2d(2 * width, width, 3, padding=1)
            self.classify = nn.Conv2d(width, k, 1)

        def forward(self, x):
            skip = self.enc1(x)
            x = torch.cat([torch.relu(self.up(self.enc2(skip))), skip], dim=1)
            return self.classify(torch.relu(self.fuse(x)))
    return TinyFCN()


def jax_layers(name, model):
    """The JAX layers in the order of the PyTorch twin's parameters (conv or transposed conv)."""
    if name == "tinyfcn":
        return [*model.enc1, *model.enc2, model.up, model.fuse, model.classify]
    convs = [conv for block in model.blocks for conv in block]
    return [*convs, model.fc6, model.fc7, model.score, model.up16, model.score_pool4, model.up8,
            model.score_pool3]


def copy_jax_to_torch(torch, name, model, net):
    """HWIO → OIHW for convs; the transposed conv's (k, k, C_out, C_in) → (C_in, C_out, k, k)."""
    copy_layers(torch, jax_layers(name, model), net)


def copy_layers(torch, layers, net):
    """JAX conv/transposed-conv layers, in order, into the twin's Conv2d/ConvTranspose2d."""
    t_layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d,
                                                           torch.nn.ConvTranspose2d))]
    assert len(layers) == len(t_layers), (len(layers), len(t_layers))
    with torch.no_grad():
        for src, dst in zip(layers, t_layers):
            kernel = np.asarray(src.kernel[...], np.float32)
            dst.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            dst.bias.copy_(torch.from_numpy(np.asarray(src.bias[...], np.float32).copy()))


class JaxStep:
    """The library's step: recipes.RECIPES[name].build (nnx_step, donated state)."""

    def __init__(self, name, batches):
        self.graphdef, self.state, self.step_fn = RECIPES[name].build(0, 1e-3, 10_000)
        self.batches = batches

    def run(self, n):
        for i in range(n):
            self.state, metrics = self.step_fn(self.state, self.batches[i % len(self.batches)])
        jax.block_until_ready((metrics["loss"], self.state))


def check_same_maths(torch, name, make_torch, np_batches, jax_batches):
    jax_step = JaxStep(name, jax_batches)
    model = nnx.merge(jax_step.graphdef, jax_step.state["nnx"])[0]
    net = make_torch(torch)
    n_jax = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    n_torch = sum(p.numel() for p in net.parameters())
    assert n_jax == n_torch, f"{name}: {n_jax} parameters in JAX, {n_torch} in PyTorch"
    copy_jax_to_torch(torch, name, model, net)
    ts = TorchStep(torch, net, np_batches, channels_last=False)
    with torch.no_grad():
        t_logits = net(ts.batches[0][0]).numpy().transpose(0, 2, 3, 1)
    logits_diff = float(np.abs(t_logits - np.asarray(model(jax_batches[0][0]))).max())
    assert logits_diff <= CHECK_TOL, f"{name}: logits differ by {logits_diff:.1e}"
    t_losses = [ts.step(*ts.batches[i]).item() for i in range(CHECK_STEPS)]
    j_losses = []
    for i in range(CHECK_STEPS):
        jax_step.state, metrics = jax_step.step_fn(jax_step.state, jax_batches[i])
        j_losses.append(float(metrics["loss"]))
    loss_diff = float(np.abs(np.array(t_losses) - np.array(j_losses)).max())
    assert loss_diff <= CHECK_TOL, f"{name}: losses {t_losses} vs JAX {j_losses}"
    return n_jax, logits_diff, loss_diff, j_losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fcn8s,tinyfcn", help="comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="timing windows per row")
    parser.add_argument("--window", type=float, default=1.0, help="seconds per window")
    args = parser.parse_args(argv)
    import torch
    torch.manual_seed(0)
    t0 = time.perf_counter()
    print("## segen_jax FCNs vs PyTorch eager (benchmarks/fcn_vs_torch.py)\n")
    print(_common.environment(extra=("torch",)))
    print(f"- torch.get_num_threads() = {torch.get_num_threads()}; XLA:CPU over "
          f"{os.cpu_count()} cores; batch {BATCH} of 64x64x1 digit scenes, 11 classes\n", flush=True)
    images, labels = data.digit_scenes(8 * BATCH, seed=0)
    np_batches = [(images[i:i + BATCH], labels[i:i + BATCH]) for i in range(0, 8 * BATCH, BATCH)]
    jax_batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in np_batches]
    twins = {"fcn8s": torch_fcn8s, "tinyfcn": torch_tinyfcn}
    for name in args.models.split(","):
        n, logits_diff, loss_diff, losses = check_same_maths(torch, name, twins[name], np_batches,
                                                             jax_batches)
        runs = {"segen_jax (recipes build: nnx_step, donated state)": JaxStep(name, jax_batches).run}
        for channels_last in (False, True):
            ts = TorchStep(torch, twins[name](torch), np_batches, channels_last=channels_last)
            runs[ts.label] = ts.run(ts.step)
        compile_start = time.perf_counter()
        for run in runs.values():
            run(2)       # warm-up: compilation, oneDNN primitive caches
        warm = time.perf_counter() - compile_start
        _common.load_now()
        steps = {k: _common.calibrate(r, target_s=args.window, minimum=2) for k, r in runs.items()}
        per = _common.interleaved_windows(runs, steps, repeats=args.repeats)
        load = _common.load_now()
        med = {k: _common.median(v) for k, v in per.items()}
        nchw = med["PyTorch eager, NCHW"]
        best_torch = min(med["PyTorch eager, NCHW"], med["PyTorch eager, channels_last"])
        rows = [[k, f"{BATCH / t:.0f}", f"{1e3 * t:.0f} ({_common.spread(per[k])})",
                 f"{nchw / t:.2f}", f"{best_torch / t:.2f}"] for k, t in med.items()]
        print(f"### {name}: {n:,} parameters (equal in both)\n")
        print(f"Same maths: logits max |Δ| = {logits_diff:.1e}, first {CHECK_STEPS} Adam-step "
              f"losses max |Δ| = {loss_diff:.1e} (JAX: {', '.join(f'{v:.4f}' for v in losses)}). "
              f"Warm-up incl. compile {warm:.0f} s; {load}\n")
        print(_common.table(["implementation", "img/s", "ms/step (spread)", "speed ÷ torch NCHW",
                             "speed ÷ best torch"], rows))
        print(flush=True)
    print(f"Total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The VAE train step of segen_jax against the same network and the same step in PyTorch
eager, in one process.

    python -m benchmarks.vae_step [--batch 64] [--quick] [--torch-compile] [--save]

prints one JSON line {"model": "vae", "batch": ..., "segen_img_s": ..., "torch_img_s": ...,
"ratio": segen/torch, ...} (and the same as steps/s). segen is `recipes.RECIPES["vae"]`'s step
(`nnx_step(parts="auto", compiler_options=None)` on `recipes.vae_loss`: digits shifted by up to 1 pixel, dynamic
binarisation of the batch, one reparameterised z, loss = KL − mean Bernoulli log-likelihood, Adam with the cosine schedule,
state donated); `segen_cpu_options_steps_s` is the same step compiled with
`train.CPU_OPTIONS` (compiler_options="auto", what the other families use on a CPU), the row
that justifies the VAE's exception; torch is its twin below, drawing its own binarisation and ε every step too,
NCHW and channels_last, the faster one counted. Timing: the median of windows interleaved
round-robin over the four (five with --torch-compile) after warm-up (`--quick`: 3 windows of 0.5 s; default: 7 of 1 s).

Same maths, checked before timing: equal parameter counts; with the JAX parameters copied into
PyTorch, equal logits for the same binarised digits and ε; and with the binarisation and ε that
the JAX step draws from its key (per part, as `nnx_step` splits the batch) fed to PyTorch, equal
losses over the first Adam steps. "SAME" padding of the stride-2 3x3 convolutions pads (0, 1)
on 28x28 and 14x14 in JAX, so the twin pads explicitly (F.pad) before an unpadded convolution.
"""
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import _common
from segen_jax import data, losses
from segen_jax.models.classifier import random_shift
from segen_jax.recipes import RECIPES, VAE_LATENT, VAE_SHIFT, vae_loss
from segen_jax.train import default_parts, nnx_model, nnx_step

CHECK_STEPS = 3
LOGITS_TOL = 1e-4
LOSS_RTOL = 1e-5       # of the loss (~540 nats at initialisation: a sum over 784 pixels)


def torch_vae(torch, width=32, latent=VAE_LATENT):
    """models/vae.py's VAE (hidden = 0), NCHW, in PyTorch: encode -> (μ, log σ²),
    decode -> logits."""
    nn, F = torch.nn, torch.nn.functional
    w = width

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, w, 3, stride=2)           # padded by hand: JAX's "SAME"
            self.conv2 = nn.Conv2d(w, 2 * w, 3, stride=2)       # pads (0, 1) here, not (1, 1)
            self.enc_out = nn.Linear(7 * 7 * 2 * w, 2 * latent)
            self.dec_project = nn.Linear(latent, 7 * 7 * 2 * w)
            self.up1 = nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1)
            self.up2 = nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1)

        def encode(self, x):
            x = torch.relu(self.conv1(F.pad(x, (0, 1, 0, 1))))
            x = torch.relu(self.conv2(F.pad(x, (0, 1, 0, 1))))
            return self.enc_out(x.flatten(1)).chunk(2, dim=1)

        def decode(self, z):
            x = torch.relu(self.dec_project(z)).view(-1, 2 * w, 7, 7)
            return self.up2(torch.relu(self.up1(x)))

    return VAE()


def copy_jax_to_torch(torch, vae, net):
    """Kernels HWIO → OIHW; ConvTranspose's (k, k, C_out, C_in) (the conv2d it is the adjoint of)
    → PyTorch's (C_in, C_out, k, k), the same transpose; the dense layers next to a reshape get
    their features permuted, since JAX lays a (7, 7, C) map out as (h, w, c), PyTorch (c, h, w)."""
    def t(a):
        return torch.from_numpy(np.array(a))

    c = 2 * vae.width
    order = np.arange(7 * 7 * c).reshape(7, 7, c).transpose(2, 0, 1).ravel()  # torch i -> jax
    with torch.no_grad():
        for name in ("conv1", "conv2", "up1", "up2"):
            conv, tconv = getattr(vae, name), getattr(net, name)
            tconv.weight.copy_(t(conv.kernel[...].transpose(3, 2, 0, 1)))
            tconv.bias.copy_(t(conv.bias[...]))
        net.enc_out.weight.copy_(t(vae.enc_out.kernel[...][order].T))
        net.enc_out.bias.copy_(t(vae.enc_out.bias[...]))
        net.dec_project.weight.copy_(t(vae.dec_project.kernel[...][:, order].T))
        net.dec_project.bias.copy_(t(vae.dec_project.bias[...][order]))


def step_randomness(key, images, parts):
    """(binarised digits, ε, next key) that the recipe's step draws from its state's key:
    nnx_step splits the key, cuts the batch into `parts` with keys fold_in(subkey, i) (subkey
    itself for one part), and vae_loss splits each into a binarisation, a z and a shift key
    (the digits are shifted by up to VAE_SHIFT pixels, then binarised)."""
    key, subkey = jax.random.split(key)
    xs, eps = [], []
    for i, part in enumerate(np.split(images, parts)):
        b_key, z_key, s_key = jax.random.split(
            subkey if parts == 1 else jax.random.fold_in(subkey, i), 3)
        shifted = random_shift(s_key, jnp.asarray(part), VAE_SHIFT)
        xs.append(np.array(losses.binarize(b_key, shifted)))
        eps.append(np.array(jax.random.normal(z_key, (len(part), VAE_LATENT))))
    return np.concatenate(xs), np.concatenate(eps), key


def jax_logits(vae, x, eps):
    """The decoder's logits for binarised x and ε, as vae_loss computes them."""
    mu, logvar = vae.encode(x)
    return vae.decode(mu + jnp.exp(0.5 * logvar) * eps)


class TorchVAEStep:
    """vae_loss's step in PyTorch eager: shift each digit by up to VAE_SHIFT pixels (zero fill),
    binarise, encode, z = μ + σ·ε, decode, −ELBO, Adam with
    optax's cosine_decay_schedule(lr, steps, alpha=0.05) set before each update.
    compile=True: the −ELBO of (x, ε) (encoder, decoder and loss) under torch.compile; the
    random draws and Adam stay eager."""

    def __init__(self, torch, net, batches, *, channels_last, lr, steps, compile=False):
        self.torch, self.net, self.t = torch, net, 0
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.fmt = fmt
        net.to(memory_format=fmt)
        self.batches = [torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
                        for x in batches]
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.lr = lambda t: lr * (0.05 + 0.475 * (1 + math.cos(math.pi * min(t, steps) / steps)))
        self.generator = torch.Generator().manual_seed(0)
        self.loss = torch.compile(self.negative_elbo) if compile else self.negative_elbo

    def negative_elbo(self, x, eps):
        """KL − E log p(x|z) with z = μ + σ·ε, the batch mean, in nats."""
        mu, logvar = self.net.encode(x)
        logits = self.net.decode(mu + self.torch.exp(0.5 * logvar) * eps)
        reconstruction = -self.torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x, reduction="sum") / x.shape[0]
        kl = 0.5 * (self.torch.exp(logvar) + mu ** 2 - 1 - logvar).sum(1).mean()
        return kl - reconstruction

    def step(self, images, x=None, eps=None):
        torch = self.torch
        x = torch.bernoulli(self.shift(images), generator=self.generator) if x is None else x
        eps = torch.randn((x.shape[0], VAE_LATENT), generator=self.generator) if eps is None else eps
        for group in self.opt.param_groups:
            group["lr"] = self.lr(self.t)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(x, eps)
        loss.backward()
        self.opt.step()
        self.t += 1
        return loss

    def shift(self, images):
        """Each image (N, 1, H, W) cropped from its zero-padded copy at a random offset."""
        torch, s = self.torch, VAE_SHIFT
        n, _, h, w = images.shape
        padded = torch.nn.functional.pad(images, (s, s, s, s))
        dy = torch.randint(0, 2 * s + 1, (n, 1), generator=self.generator)
        dx = torch.randint(0, 2 * s + 1, (n, 1), generator=self.generator)
        rows = (dy + torch.arange(h))[:, :, None]            # (N, H, 1)
        cols = (dx + torch.arange(w))[:, None, :]            # (N, 1, W)
        crops = padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]
        return crops.contiguous(memory_format=self.fmt)

    def run(self, n):
        for i in range(n):
            loss = self.step(self.batches[i % len(self.batches)])
        loss.item()


def measure(batch, *, repeats, window, torch_compile=False):
    images, _ = data.load_mnist("train")
    batches = [images[i * batch:(i + 1) * batch] for i in range(4)]
    recipe = RECIPES["vae"]
    lr, total = recipe.defaults["lr"], recipe.defaults["steps"]
    jax.block_until_ready(jax.jit(lambda v: v + 1)(jnp.ones(2)))
    start = time.perf_counter()
    graphdef, state, step = recipe.build(0, lr, total)
    snapshot = jax.tree.map(jnp.copy, state)          # the step donates its state
    vae = nnx_model(graphdef, snapshot)
    key = snapshot["key"]
    state, first = step(state, jnp.asarray(batches[0]))
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start
    jax_losses = [float(first["loss"])]
    for i in range(1, CHECK_STEPS):
        state, m = step(state, jnp.asarray(batches[i]))
        jax_losses.append(float(m["loss"]))

    import torch
    net = torch_vae(torch)
    n_jax = sum(p.size for p in jax.tree.leaves(nnx.state(vae, nnx.Param)))
    n_torch = sum(p.numel() for p in net.parameters())
    assert n_jax == n_torch, f"vae: {n_jax} parameters in JAX, {n_torch} in PyTorch"
    copy_jax_to_torch(torch, vae, net)
    parts = default_parts(batch)
    nchw = lambda a: torch.from_numpy(a.transpose(0, 3, 1, 2).copy())
    check = TorchVAEStep(torch, net, batches, channels_last=False, lr=lr, steps=total)
    torch_losses, logits_diff = [], None
    for i in range(CHECK_STEPS):
        x, eps, key = step_randomness(key, batches[i], parts)
        if i == 0:
            with torch.no_grad():
                mu, logvar = net.encode(nchw(x))
                logits = net.decode(mu + torch.exp(0.5 * logvar) * torch.from_numpy(eps))
            logits_diff = float(np.abs(logits.numpy().transpose(0, 2, 3, 1)
                                       - np.array(jax_logits(vae, jnp.asarray(x), eps))).max())
            assert logits_diff <= LOGITS_TOL, f"vae: logits differ by {logits_diff}"
        torch_losses.append(check.step(None, nchw(x), torch.from_numpy(eps)).item())
    loss_diff = float(np.abs(np.array(torch_losses) - np.array(jax_losses)).max())
    assert loss_diff <= LOSS_RTOL * abs(jax_losses[0]), (
        f"vae: losses {torch_losses} vs JAX {jax_losses}")

    def segen_run(n):
        nonlocal state
        for i in range(n):
            state, metrics = step(state, jnp.asarray(batches[i % len(batches)]))
        jax.block_until_ready((metrics["loss"], state))

    cpu = {"step": nnx_step(graphdef, vae_loss, parts="auto", compiler_options="auto"),
           "state": jax.tree.map(jnp.copy, snapshot)}

    def segen_cpu_options_run(n):     # the same step with train.CPU_OPTIONS on a CPU
        for i in range(n):
            cpu["state"], metrics = cpu["step"](cpu["state"], jnp.asarray(batches[i % len(batches)]))
        jax.block_until_ready((metrics["loss"], cpu["state"]))

    runs = {"segen": segen_run, "segen_cpu_options": segen_cpu_options_run}
    for channels_last in (False, True):
        runs["torch_cl" if channels_last else "torch_nchw"] = TorchVAEStep(
            torch, torch_vae(torch), batches, channels_last=channels_last, lr=lr, steps=total).run
    compiled = _common.add_torch_compile(runs, lambda: TorchVAEStep(
        torch, torch_vae(torch), batches, channels_last=False, lr=lr, steps=total,
        compile=True).run) if torch_compile else {}
    for run in runs.values():
        run(2)
    _common.load_now()
    steps = {k: _common.calibrate(r, target_s=window, minimum=2) for k, r in runs.items()}
    per = _common.interleaved_windows(runs, steps, repeats=repeats)
    load = _common.load_now()
    rate = {k: 1 / _common.median(v) for k, v in per.items()}
    best = max(rate["torch_nchw"], rate["torch_cl"])
    return {
        "model": "vae", "batch": batch,
        "segen_img_s": round(batch * rate["segen"], 1), "torch_img_s": round(batch * best, 1),
        "ratio": round(rate["segen"] / best, 3),
        "segen_steps_s": round(rate["segen"], 2), "torch_steps_s": round(best, 2),
        "segen_cpu_options_steps_s": round(rate["segen_cpu_options"], 2),
        "torch_nchw_steps_s": round(rate["torch_nchw"], 2),
        "torch_channels_last_steps_s": round(rate["torch_cl"], 2),
        **_common.compile_columns(rate, compiled, unit="steps_s"),
        "parameters": int(n_jax), "parts": parts,
        "same_maths": {"logits_max_abs_diff": logits_diff, "loss_max_abs_diff": loss_diff,
                       "first_losses": jax_losses},
        "compile_s": round(compile_s, 2), "spread": {k: _common.spread(v) for k, v in per.items()},
        "repeats": repeats, "window_s": window, "load": load,
        **_common.run_record(torch),
    }


def main(argv=None):
    return _common.bench_main(
        argv, doc=__doc__, module="vae_step", measure=measure,
        result_path=lambda batch: f"vae/vae_b{batch}.json", min_batch=1,
        why="4 distinct batches of the 4,000 shipped digits are cycled")


if __name__ == "__main__":
    raise SystemExit(main())

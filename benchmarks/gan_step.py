"""The DCGAN train step (one discriminator update, then one generator update) of segen_jax
against the same two networks and the same step in PyTorch eager, in one process.

    python -m benchmarks.gan_step [--batch 64] [--quick] [--torch-compile] [--save]

prints one JSON line {"model": "dcgan", "batch": ..., "segen_steps_s": ..., "torch_steps_s":
..., "ratio": segen/torch, ...}. segen is `recipes.RECIPES["dcgan"]`'s step (gan_step,
non-saturating loss with the R1 penalty (γ/2)·E‖∇_x D(x)‖² on the first 16 real digits of each
batch (recipes.DCGAN_R1), Adam 2e-4 with β = (0.5, 0.999), state donated, the discriminator's
passes in parts="auto"); `segen_parts1_steps_s` is the same step with the batch kept whole
(parts=1), the row that justifies the parts; `segen_xla_defaults_steps_s` the same step
compiled with XLA's default options (compiler_options=None: YNNPACK convolutions), the row that
justifies `train.CPU_OPTIONS`; torch is its twin below, NCHW and channels_last, the faster one
counted.

Same maths, checked before timing: equal parameter counts; with the JAX parameters copied into
PyTorch and the noise that the JAX step draws from its key fed to PyTorch, the discriminator
and generator losses of the first steps agree (batch norm in training mode in both; LeakyReLU's
derivative at exactly 0 as JAX takes it, see torch_dcgan).
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import _common
from segen_jax import data
from segen_jax.gan_step import gan_models, gan_step
from segen_jax.recipes import DCGAN_R1, GAN_LATENT, RECIPES
from segen_jax.train import default_parts

CHECK_STEPS = 3
CHECK_TOL = 2e-4


def torch_dcgan(torch, width=32, latent=GAN_LATENT, *, jax_kink=False):
    """(generator, discriminator): models/gan.py's DCGAN pair, NCHW, in PyTorch.

    jax_kink: LeakyReLU with JAX's derivative 1 at exactly 0 (torch's is the slope 0.2). The
    two differ only where a pre-activation is exactly 0, which happens everywhere on the
    digits' blank margins at initialisation (zero input, zero bias), so the same-maths check
    uses JAX's rule; the timed twins use PyTorch's fused leaky_relu."""
    nn = torch.nn
    w = width

    def leaky_relu(x):
        return torch.where(x >= 0, x, 0.2 * x) if jax_kink else nn.functional.leaky_relu(x, 0.2)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(latent, 7 * 7 * 2 * w)
            self.bn0 = nn.BatchNorm2d(2 * w, momentum=0.1, eps=1e-5)
            self.up1 = nn.Conv2d(2 * w, w, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(w, momentum=0.1, eps=1e-5)
            self.up2 = nn.Conv2d(w, 1, 3, padding=1)

        def forward(self, z):
            x = torch.relu(self.bn0(self.project(z).view(-1, 2 * w, 7, 7)))
            x = torch.relu(self.bn1(self.up1(nn.functional.interpolate(x, scale_factor=2))))
            return torch.sigmoid(self.up2(nn.functional.interpolate(x, scale_factor=2)))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, w, 4, stride=2, padding=1)
            self.conv2 = nn.Conv2d(w, 2 * w, 4, stride=2, padding=1)
            self.out = nn.Linear(7 * 7 * 2 * w, 1)

        def forward(self, x):
            x = leaky_relu(self.conv1(x))
            x = leaky_relu(self.conv2(x))
            return self.out(x.flatten(1))

    return Generator(), Discriminator()


def copy_jax_to_torch(torch, generator, discriminator, g_net, d_net):
    """Kernels HWIO → OIHW; the dense layers next to a reshape get their features permuted,
    since JAX lays a (7, 7, C) map out as (h, w, c) and PyTorch as (c, h, w)."""
    def t(a):
        return torch.from_numpy(np.array(a))

    c = 2 * generator.width
    order = np.arange(7 * 7 * c).reshape(7, 7, c).transpose(2, 0, 1).ravel()  # torch i -> jax
    with torch.no_grad():
        g_net.project.weight.copy_(t(generator.project.kernel[...][:, order].T))
        g_net.project.bias.copy_(t(generator.project.bias[...][order]))
        for name in ("bn0", "bn1"):
            bn, tbn = getattr(generator, name), getattr(g_net, name)
            tbn.weight.copy_(t(bn.scale[...]))
            tbn.bias.copy_(t(bn.bias[...]))
        for name in ("up1", "up2"):
            conv, tconv = getattr(generator, name), getattr(g_net, name)
            tconv.weight.copy_(t(conv.kernel[...].transpose(3, 2, 0, 1)))
            tconv.bias.copy_(t(conv.bias[...]))
        for name in ("conv1", "conv2"):
            conv, tconv = getattr(discriminator, name), getattr(d_net, name)
            tconv.weight.copy_(t(conv.kernel[...].transpose(3, 2, 0, 1)))
            tconv.bias.copy_(t(conv.bias[...]))
        d_net.out.weight.copy_(t(discriminator.out.kernel[...][order].T))
        d_net.out.bias.copy_(t(discriminator.out.bias[...]))


def step_noise(key, batch):
    """The (z for the discriminator update, z for the generator update, next key) that
    gan_step (n_critic = 1) draws from its state's key."""
    key, z_key, _ = jax.random.split(key, 3)
    z_d = jax.random.normal(z_key, (batch, GAN_LATENT))
    key, z_key = jax.random.split(key)
    return np.array(z_d), np.array(jax.random.normal(z_key, (batch, GAN_LATENT))), key


class TorchGANStep:
    """The non-saturating DCGAN step in PyTorch eager: D on real and G(z).detach(), plus the R1
    penalty on the first m real images (recipes.DCGAN_R1; torch.autograd.grad with
    create_graph), then G (compile=True: both networks under torch.compile; R1's double
    backward, which torch.compile does not support, stays on the eager discriminator)."""

    def __init__(self, torch, g_net, d_net, batches, *, channels_last, compile=False):
        self.torch, self.g, self.d, self.d_eager = torch, g_net, d_net, d_net
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        for net in (g_net, d_net):
            net.to(memory_format=fmt)
        self.batches = [torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
                        for x in batches]
        adam = lambda net: torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.g_opt, self.d_opt = adam(g_net), adam(d_net)
        if compile:     # both networks' forwards (and backwards); Adam stays eager
            self.g, self.d = torch.compile(g_net), torch.compile(d_net)
        self.generator = torch.Generator().manual_seed(0)

    def step(self, real, z_d=None, z_g=None):
        torch, softplus = self.torch, self.torch.nn.functional.softplus
        n = real.shape[0]
        z_d = torch.randn(n, GAN_LATENT, generator=self.generator) if z_d is None else z_d
        z_g = torch.randn(n, GAN_LATENT, generator=self.generator) if z_g is None else z_g
        self.d_opt.zero_grad(set_to_none=True)
        fake = self.g(z_d).detach()
        d_loss = softplus(-self.d(real)).mean() + softplus(self.d(fake)).mean()
        if DCGAN_R1["r1_weight"] > 0:
            x = real[:DCGAN_R1["r1_samples"]].detach().requires_grad_(True)
            grad, = torch.autograd.grad(self.d_eager(x).sum(), x, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            d_loss = d_loss + 0.5 * DCGAN_R1["r1_weight"] * r1
        d_loss.backward()
        self.d_opt.step()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = softplus(-self.d(self.g(z_g))).mean()
        g_loss.backward()
        self.g_opt.step()
        return d_loss, g_loss

    def run(self, n):
        for i in range(n):
            d_loss, _ = self.step(self.batches[i % len(self.batches)])
        d_loss.item()


def measure(batch, *, repeats, window, torch_compile=False):
    images, _ = data.load_mnist("train")
    batches = [images[i * batch:(i + 1) * batch] for i in range(4)]
    jax.block_until_ready(jax.jit(lambda v: v + 1)(jnp.ones(2)))
    start = time.perf_counter()
    # the recipe decays its rate along a cosine over `steps`; over 10**9 steps the rate of the
    # first steps is 2e-4 to float precision, the twin's constant Adam rate
    graphdef, state, step = RECIPES["dcgan"].build(0, 2e-4, 10**9)
    snapshot = jax.tree.map(jnp.copy, state)          # the step donates its state
    generator, discriminator = gan_models(graphdef, snapshot)
    key = snapshot["key"]
    state, first = step(state, jnp.asarray(batches[0]))
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start
    jax_losses = [(float(first["d_loss"]), float(first["g_loss"]))]
    for i in range(1, CHECK_STEPS):
        state, m = step(state, jnp.asarray(batches[i]))
        jax_losses.append((float(m["d_loss"]), float(m["g_loss"])))

    import torch
    width = generator.width                           # the twin follows the recipe's width
    g_net, d_net = torch_dcgan(torch, width, jax_kink=True)
    n_jax = sum(p.size for p in jax.tree.leaves(nnx.state((generator, discriminator), nnx.Param)))
    n_torch = sum(p.numel() for net in (g_net, d_net) for p in net.parameters())
    assert n_jax == n_torch, f"dcgan: {n_jax} parameters in JAX, {n_torch} in PyTorch"
    copy_jax_to_torch(torch, generator, discriminator, g_net, d_net)
    check = TorchGANStep(torch, g_net, d_net, batches, channels_last=False)
    torch_losses = []
    for i in range(CHECK_STEPS):
        z_d, z_g, key = step_noise(key, batch)
        d_loss, g_loss = check.step(check.batches[i], torch.from_numpy(z_d), torch.from_numpy(z_g))
        torch_losses.append((d_loss.item(), g_loss.item()))
    loss_diff = float(np.abs(np.array(torch_losses) - np.array(jax_losses)).max())
    assert loss_diff <= CHECK_TOL, f"dcgan: losses {torch_losses} vs JAX {jax_losses}"

    def segen_run(n):
        nonlocal state
        for i in range(n):
            state, metrics = step(state, jnp.asarray(batches[i % len(batches)]))
        jax.block_until_ready((metrics["d_loss"], state))

    whole = {"step": gan_step(graphdef, "non-saturating", latent_dim=GAN_LATENT, parts=1,
                              **DCGAN_R1),
             "state": jax.tree.map(jnp.copy, snapshot)}

    def segen_parts1_run(n):          # the same step with D's batch kept whole
        for i in range(n):
            whole["state"], metrics = whole["step"](whole["state"],
                                                    jnp.asarray(batches[i % len(batches)]))
        jax.block_until_ready((metrics["d_loss"], whole["state"]))

    defaults = {"step": gan_step(graphdef, "non-saturating", latent_dim=GAN_LATENT, parts="auto",
                                 compiler_options=None, **DCGAN_R1),
                "state": jax.tree.map(jnp.copy, snapshot)}

    def segen_xla_defaults_run(n):    # the same step compiled with XLA's default options
        for i in range(n):
            defaults["state"], metrics = defaults["step"](defaults["state"],
                                                          jnp.asarray(batches[i % len(batches)]))
        jax.block_until_ready((metrics["d_loss"], defaults["state"]))

    runs = {"segen": segen_run, "segen_parts1": segen_parts1_run,
            "segen_xla_defaults": segen_xla_defaults_run}
    for channels_last in (False, True):
        g_twin, d_twin = torch_dcgan(torch, width)
        runs["torch_cl" if channels_last else "torch_nchw"] = TorchGANStep(
            torch, g_twin, d_twin, batches, channels_last=channels_last).run
    compiled = _common.add_torch_compile(runs, lambda: TorchGANStep(
        torch, *torch_dcgan(torch, width), batches, channels_last=False, compile=True).run) if (
        torch_compile) else {}
    for run in runs.values():
        run(2)
    _common.load_now()
    steps = {k: _common.calibrate(r, target_s=window, minimum=2) for k, r in runs.items()}
    per = _common.interleaved_windows(runs, steps, repeats=repeats)
    load = _common.load_now()
    rate = {k: 1 / _common.median(v) for k, v in per.items()}
    best = max(rate["torch_nchw"], rate["torch_cl"])
    return {
        "model": "dcgan", "batch": batch,
        "segen_steps_s": round(rate["segen"], 2), "torch_steps_s": round(best, 2),
        "segen_parts": default_parts(batch),     # gan_step's "auto" for pack 1, D without batch norm
        "segen_parts1_steps_s": round(rate["segen_parts1"], 2),
        "segen_xla_defaults_steps_s": round(rate["segen_xla_defaults"], 2),
        "ratio": round(rate["segen"] / best, 3),
        "torch_nchw_steps_s": round(rate["torch_nchw"], 2),
        "torch_channels_last_steps_s": round(rate["torch_cl"], 2),
        **_common.compile_columns(rate, compiled, unit="steps_s"),
        "parameters": int(n_jax),
        "same_maths": {"loss_max_abs_diff": loss_diff, "first_losses": jax_losses},
        "compile_s": round(compile_s, 2), "spread": {k: _common.spread(v) for k, v in per.items()},
        "repeats": repeats, "window_s": window, "load": load,
        **_common.run_record(torch),
    }


def main(argv=None):
    return _common.bench_main(
        argv, doc=__doc__, module="gan_step", measure=measure,
        result_path=lambda batch: f"gan/dcgan_b{batch}.json", min_batch=2,
        why="batch norm needs 2; 4 distinct batches of the 4,000 shipped digits are cycled")


if __name__ == "__main__":
    raise SystemExit(main())

"""The GAN train step: n_critic discriminator (critic) updates, then one generator update,
compiled once, for `segen_jax.train.train`.

State (gan_state): {"nnx": the arrays of (generator, discriminator, g_optimizer,
d_optimizer), "key": a PRNG key}, donated to each step like nnx_state's.

One step on a batch of real examples (n_critic·B, ...), cut into n_critic consecutive parts
x_1 … x_k of B (each critic update sees fresh real data, as in Gulrajani et al.'s Algorithm 1):
    for i = 1 … n_critic:   z ~ N(0, I) (B, latent);  x̃ = G(z) (no gradient to G)
                            θ_D ← θ_D − update(∇_θD L_D(D, x_i, x̃, key_i))
    z ~ N(0, I) (B, latent);  θ_G ← θ_G − update(∇_θG L_G(D(G(z))))
With pack = m > 1 (PacGAN) D sees m samples at once: x_i and x̃ are grouped by
`models.pack_samples` before D, so B must be divisible by m.

parts = P > 1 (a CPU speed-up, as in `train.nnx_step`): D's passes are cut into P equal parts
of each batch, and the losses are the means of the parts' losses,
    L_D = (1/P) Σ_p L_D(D, x_i^(p), x̃^(p)),   L_G = (1/P) Σ_p L_G(D(G(z)^(p))),
which equal the whole batch's losses (up to float rounding) because every loss here is a mean
over examples; the parts' D passes are independent chains that XLA:CPU runs side by side.
G still runs on the whole batch, so its batch norm sees all B samples. D must have no batch
statistics (an int P > 1 raises), and the gradient penalty draws its interpolation weights per
part (from the part's own key), so "wgan-gp" with P > 1 samples different weights than with
P = 1. parts="auto" takes `train.default_parts(B)` (8, 4, 2 or 1 on one CPU device; 1 on
GPU/TPU or with several devices), halved until each part's size is divisible by pack, and
falls back to 1 when D has batch statistics.

Losses (LOSSES[name] -> (d_loss, g_loss), losses.py has the formulas):
    "minimax":         L_D = discriminator_loss,  L_G = generator_loss_saturating
    "non-saturating":  L_D = discriminator_loss,  L_G = generator_loss_non_saturating
    "wgan-gp":         L_D = wasserstein_critic_loss + λ·gradient_penalty (λ = gp_weight, default 10),
                       L_G = wasserstein_generator_loss
    "hinge":           L_D = hinge_discriminator_loss, L_G = wasserstein_generator_loss
r1_weight = γ > 0 adds (γ/2)·R1 = (γ/2)·E_x[‖∇_x D(x)‖²] on each critic update's real batch to
L_D (`losses.r1_penalty`, Mescheder et al. 2018), for any loss; it costs a second backward
pass through D. r1_samples = m takes the expectation over the first min(m, B) real examples of
each update only (with pack > 1: over their groups): for a D without batch statistics an
unbiased estimate of the same R1 (the batches are shuffled), with more variance, at about m/B
of the cost; it is not used when γ = 0. A discriminator may offer `r1_forward(x)`, the same
function in a form whose second derivatives are cheaper (`DCGANDiscriminator.r1_forward`:
im2col convolutions on a CPU); R1 and WGAN-GP's gradient penalty, the two terms that are
differentiated twice, then go through that, while the scores in the loss itself stay D(x)
(WGAN-GP's recipe step ran 1.7-1.8x faster so on a 2-core CPU: benchmarks/wgan_gp_step.py).
(StyleGAN2's lazy R1, (k·γ/2)·R1 every k-th update, was measured on the DCGAN recipe and did
not keep R1's gain under Adam: experiments/dcgan_probes.py.)
ema = β (with a state from gan_state(..., ema=True)) also keeps an exponential moving average of
the generator's parameters and batch-norm statistics, updated after every generator update,
    θ̄_G ← β·θ̄_G + (1 − β)·θ_G        (θ̄_G starts at the initial θ_G),
in state["g_ema"]; it does not change training. gan_models(graphdef, state, ema=True) returns
the generator with the averaged arrays. The average smooths the step-to-step oscillation of a
GAN's generator (Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN
Training"); it helps most while the learning rate is still high (experiments/dcgan_probes.py).
augment = T (a function (key, images) -> images, e.g. diff_augment) shows D only augmented
images, real and generated alike, in every critic and generator update ("DiffAugment", Zhao et
al. 2020): L_D(D∘T_k, x, x̃) and L_G(D∘T_k(G(z))) with a fresh key k for each batch. T must be
differentiable in the images, since G's gradient flows through it; R1 is then taken at the
points D sees as real, ‖∇_u D(u)‖² at u = T_k(x). It is meant for small training sets, where
D otherwise learns the set by heart; on the course's DCGAN, whose R1 already keeps D near
chance, it slowed G down instead (experiments/dcgan_probes.py).
Metrics: d_loss (of the last critic update, R1 term included), g_loss, d_grad_norm,
g_grad_norm, gradient_penalty for "wgan-gp" and r1_penalty when γ > 0; all guarded by the
training loop's NaN/inf check.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from segen_jax import losses
from segen_jax.models.classifier import random_shift
from segen_jax.models.gan import pack_samples
from segen_jax.train import default_parts, xla_options

GP_WEIGHT = 10.0


def _minimax_d(d_real, d_fake, gp, gp_weight):
    return losses.discriminator_loss(d_real, d_fake), {}


def _wgan_d(d_real, d_fake, gp, gp_weight):
    penalty = gp()
    return losses.wasserstein_critic_loss(d_real, d_fake) + gp_weight * penalty, {
        "gradient_penalty": penalty}


def _hinge_d(d_real, d_fake, gp, gp_weight):
    return losses.hinge_discriminator_loss(d_real, d_fake), {}


LOSSES = {
    "minimax": (_minimax_d, losses.generator_loss_saturating),
    "non-saturating": (_minimax_d, losses.generator_loss_non_saturating),
    "wgan-gp": (_wgan_d, losses.wasserstein_generator_loss),
    "hinge": (_hinge_d, losses.wasserstein_generator_loss),
}


_AVERAGED = (nnx.Param, nnx.BatchStat)      # what the generator's moving average covers


def gan_state(generator, discriminator, g_optimizer, d_optimizer, *, seed: int = 0,
              ema: bool = False):
    """(graphdef, state) for gan_step (module docstring). ema=True adds state["g_ema"], the
    generator's moving average (a copy of its parameters and batch statistics to start), for
    gan_step(ema=β)."""
    if not isinstance(ema, bool):
        raise ValueError(f"gan_state: ema must be True or False, got {ema!r}")
    graphdef, arrays = nnx.split((generator, discriminator, g_optimizer, d_optimizer))
    state = {"nnx": arrays, "key": jax.random.key(seed)}
    if ema:       # a copy: the step donates its state, and no buffer may be donated twice
        state["g_ema"] = jax.tree.map(jnp.copy, nnx.state(generator, _AVERAGED))
    return graphdef, state


def gan_models(graphdef, state, *, ema: bool = False):
    """(generator, discriminator) of a gan_state state; with ema=True the generator carries
    the moving average state["g_ema"] (module docstring) instead of its trained arrays."""
    if ema and "g_ema" not in state:
        raise ValueError("gan_models: ema=True needs a state made by gan_state(..., "
                         f"ema=True), which holds 'g_ema'; this one holds {sorted(state)}")
    # nnx.merge may reuse the state's variables; with ema, merge fresh ones (the same arrays)
    # so that loading the average into the generator leaves the training state alone
    arrays = jax.tree.map(lambda a: a, state["nnx"]) if ema else state["nnx"]
    generator, discriminator, _, _ = nnx.merge(graphdef, arrays)
    if ema:
        nnx.update(generator, state["g_ema"])
    return generator, discriminator


def gan_step(graphdef, loss="non-saturating", *, latent_dim, n_critic=1, pack=1,
             gp_weight=GP_WEIGHT, r1_weight=0.0, r1_samples=None, parts=1, ema=None,
             augment=None, compiler_options="auto"):
    """The compiled step (module docstring): step(state, real) -> (state, metrics), where
    real is (n_critic·B, ...) and, for the "wgan-gp" loss, the critic must have no batch
    statistics (its penalty is per example). gp_weight: λ of "wgan-gp" (Gulrajani et al. use
    10 for images and 0.1 in their 2-D toy experiments). r1_weight: γ of the R1 penalty
    (module docstring; 0 leaves it out); r1_samples: m, R1 on the first min(m, B) real
    examples of each critic update (None: all B). parts: an int P >= 1 or "auto" (module docstring).
    ema: None, or β in [0, 1) for the generator's moving average (module docstring; the state
    must come from gan_state(..., ema=True)). augment: None or a function (key, images) ->
    images applied to everything D sees (module docstring; diff_augment is one).
    compiler_options: "auto", None or a dict, as in train.nnx_step."""
    if loss not in LOSSES:
        raise ValueError(f"gan_step: loss must be one of {sorted(LOSSES)}, got {loss!r}")
    for name, value in (("latent_dim", latent_dim), ("n_critic", n_critic), ("pack", pack)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"gan_step: {name} must be an int >= 1, got {value!r}")
    for name, value in (("gp_weight", gp_weight), ("r1_weight", r1_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                value >= 0 and value < float("inf")):
            raise ValueError(f"gan_step: {name} must be a finite number >= 0, got {value!r}")
    if r1_samples is not None and (isinstance(r1_samples, bool) or not isinstance(
            r1_samples, (int, np.integer)) or r1_samples < 1):
        raise ValueError(f"gan_step: r1_samples must be None or an int >= 1, got {r1_samples!r}")
    r1_samples = r1_samples if r1_samples is None else int(r1_samples)
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float))
                            or not 0 <= ema < 1):
        raise ValueError(f"gan_step: ema must be None or a number β with 0 <= β < 1, got {ema!r}")
    if parts != "auto" and (isinstance(parts, bool) or not isinstance(parts, (int, np.integer))
                            or parts < 1):
        raise ValueError(f"gan_step: parts must be 'auto' or an int >= 1, got {parts!r}")
    parts = parts if parts == "auto" else int(parts)
    if augment is not None and not callable(augment):
        raise ValueError("gan_step: augment must be None or a function (key, images) -> images, "
                         f"got {augment!r}")
    d_loss_fn, g_loss_fn = LOSSES[loss]
    group = (lambda x: pack_samples(x.reshape(x.shape[0], -1), pack)) if pack > 1 else (
        lambda x: x)

    @functools.partial(jax.jit, donate_argnums=0,
                       compiler_options=xla_options("gan_step", compiler_options))
    def step(state, real):
        size = real.shape[0]
        if size % n_critic or (size // n_critic) % pack:
            raise ValueError(f"gan_step: the batch ({size}) must be n_critic ({n_critic}) "
                             f"parts of a size divisible by pack ({pack})")
        b = size // n_critic
        if r1_weight > 0 and r1_samples is not None and min(r1_samples, b) % pack:
            raise ValueError(f"gan_step: r1_samples ({r1_samples}) must be divisible by pack "
                             f"({pack}) when it is smaller than the batch of each update ({b})")
        if ema is not None and "g_ema" not in state:
            raise ValueError(f"gan_step: ema={ema} needs a state made by gan_state(..., "
                             f"ema=True), which holds 'g_ema'; this one holds {sorted(state)}")
        generator, discriminator, g_opt, d_opt = nnx.merge(graphdef, state["nnx"])
        if loss == "wgan-gp" and jax.tree.leaves(nnx.state(discriminator, nnx.BatchStat)):
            raise ValueError("gan_step: the wgan-gp critic must have no batch statistics "
                             "(nnx.BatchStat): its gradient penalty is per example")
        n = _parts(parts, b, pack, discriminator)

        def split(x):
            return [x[p * (b // n):(p + 1) * (b // n)] for p in range(n)]
        generator.train()              # batch statistics while training, whatever the mode
        discriminator.train()          # the models were in when gan_state split them
        key = state["key"]
        for i in range(n_critic):
            key, z_key, gp_key = jax.random.split(key, 3)
            x_real = real[i * b:(i + 1) * b]
            fake = jax.lax.stop_gradient(generator(jax.random.normal(z_key, (b, latent_dim))))
            if augment is not None:
                key, real_key, fake_key = jax.random.split(key, 3)
                x_real, fake = augment(real_key, x_real), augment(fake_key, fake)

            def d_part(d, x_real, fake, gp_key):
                critic = getattr(d, "r1_forward", d)         # the same D, faster twice
                gp = lambda: losses.gradient_penalty(lambda x: critic(x), group(x_real),
                                                     group(fake), gp_key)
                return d_loss_fn(d(group(x_real)), d(group(fake)), gp, gp_weight)

            def d_objective(d):
                if n == 1:
                    value, extra = d_part(d, x_real, fake, gp_key)
                else:
                    results = [d_part(d, r, f, jax.random.fold_in(gp_key, p))
                               for p, (r, f) in enumerate(zip(split(x_real), split(fake)))]
                    value, extra = jax.tree.map(lambda *v: sum(v) / n, *results)
                if r1_weight > 0:
                    chunks = split(x_real) if r1_samples is None else [x_real[:r1_samples]]
                    critic = getattr(d, "r1_forward", d)     # the same D, faster twice
                    r1 = sum(losses.r1_penalty(lambda x: critic(x), group(c))
                             for c in chunks) / len(chunks)
                    value, extra = value + 0.5 * r1_weight * r1, {**extra, "r1_penalty": r1}
                return value, extra

            (d_loss, d_metrics), d_grads = nnx.value_and_grad(d_objective, has_aux=True)(
                discriminator)
            d_opt.update(discriminator, d_grads)
        key, z_key = jax.random.split(key)
        z = jax.random.normal(z_key, (b, latent_dim))
        shown = lambda x: x
        if augment is not None:
            key, g_aug_key = jax.random.split(key)
            shown = lambda x: augment(g_aug_key, x)
        g_loss, g_grads = nnx.value_and_grad(
            lambda g: sum(g_loss_fn(discriminator(group(f))) for f in split(shown(g(z)))) / n)(
            generator)
        g_opt.update(generator, g_grads)
        metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_grad_norm": optax.tree.norm(d_grads),
                   "g_grad_norm": optax.tree.norm(g_grads), **d_metrics}
        new_state = {"nnx": nnx.state((generator, discriminator, g_opt, d_opt)), "key": key}
        if ema is not None:
            new_state["g_ema"] = jax.tree.map(lambda avg, now: ema * avg + (1 - ema) * now,
                                              state["g_ema"], nnx.state(generator, _AVERAGED))
        elif "g_ema" in state:         # carried unchanged, so the state keeps its structure
            new_state["g_ema"] = state["g_ema"]
        return new_state, metrics

    return step


def _parts(parts, b, pack, discriminator):
    """How many parts the step cuts each batch of b into (module docstring)."""
    has_stats = bool(jax.tree.leaves(nnx.state(discriminator, nnx.BatchStat)))
    if parts == "auto":
        n = default_parts(b)
        while n > 1 and (b // n) % pack:
            n //= 2
        return 1 if has_stats else n
    if b % parts or (b // parts) % pack:
        raise ValueError(f"gan_step: parts={parts} must divide the batch of each update ({b}) "
                         f"into parts of a size divisible by pack ({pack})")
    if parts > 1 and has_stats:
        raise ValueError(f"gan_step: parts={parts} splits the discriminator's batch, but it has "
                         "batch statistics (nnx.BatchStat), which would then be per part; use "
                         "parts=1")
    return parts


def diff_augment(key, images, *, shift: int = 4, cutout: int = 0):
    """DiffAugment's translation and cutout (Zhao et al. 2020), for gan_step(augment=...):
    images (B, H, W, C) -> (B, H, W, C), for each image b
        T(x)_b = m_b ⊙ S_b x_b,
    where S_b shifts image b by (dy, dx) ~ uniform{−s..s}² (s = shift), filling with zeros, and
    the mask m_b is 1 except on a cutout × cutout square, its top-left corner at (cy − c//2,
    cx − c//2) with (cy, cx) uniform over the pixels (clipped at the borders), where it is 0.
    Both are linear in x, so gradients pass through to the images (and to G); shift=0 or
    cutout=0 leaves that part out. Zero is the background of images in [0, 1]."""
    if getattr(images, "ndim", None) != 4:
        raise ValueError("diff_augment: images must be (B, H, W, C), got shape "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    _, h, w, _ = images.shape
    for name, value, high in (("shift", shift, min(h, w) - 1), ("cutout", cutout, min(h, w))):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                0 <= value <= high):
            raise ValueError(f"diff_augment: {name} must be an int in [0, {high}] for images of "
                             f"{h}x{w}, got {value!r}")
    shift_key, cut_key = jax.random.split(key)
    if shift:
        images = random_shift(shift_key, images, int(shift))
    if cutout:
        b = images.shape[0]
        top_left = jax.random.randint(cut_key, (b, 2), 0, jnp.array([h, w])) - cutout // 2
        rows = jnp.arange(h)[None, :] - top_left[:, :1]          # (B, H)
        cols = jnp.arange(w)[None, :] - top_left[:, 1:]          # (B, W)
        inside = ((rows >= 0) & (rows < cutout))[:, :, None] & (
            (cols >= 0) & (cols < cutout))[:, None, :]
        images = images * (~inside)[..., None].astype(images.dtype)
    return images


def sample(generator, n, *, latent_dim, seed=0):
    """n samples (n, ...) of a generator from z ~ N(0, I) (n, latent_dim), with its batch norm
    layers on their running averages; each layer's mode is restored afterwards."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sample: n must be an int >= 1, got {n!r}")
    norms = [m for _, m in nnx.iter_graph(generator) if isinstance(m, nnx.BatchNorm)]
    modes = [m.use_running_average for m in norms]
    for m in norms:
        m.use_running_average = True
    try:
        return generator(jax.random.normal(jax.random.key(seed), (n, latent_dim)))
    finally:
        for m, mode in zip(norms, modes):
            m.use_running_average = mode

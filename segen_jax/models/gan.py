"""GAN networks: MLPs for the 2-D toy mixtures, and DCGAN's generator and discriminator for
28x28x1 digits (Radford, Metz & Chintala 2016).

MLPGenerator:      z (N, latent) → [Linear → ReLU]×L → Linear → x (N, 2)
MLPDiscriminator:  x (N, pack·2) → [Linear → LeakyReLU 0.2]×L → Linear → logit (N, 1)
    pack > 1 is PacGAN (Lin et al. 2018): the discriminator judges `pack` samples at once,
    concatenated, so a generator that repeats one mode is easier to catch; `pack_samples`
    groups a batch (N·pack, 2) into (N, pack·2).

DCGANGenerator (images in [0, 1], so the last activation is a sigmoid):
    z (N, latent) → Linear → (7, 7, 2w) → BN → ReLU
      → up ×2 → (14, 14, w) → BN → ReLU → up ×2 → (28, 28, 1) → sigmoid
    up ×2 = "resize": nearest-neighbour ×2 then a 3x3 conv (no checkerboard, Odena et al. 2016)
            "transpose": a transposed conv, kernel 4, stride 2, padding 1 (DCGAN's own).
DCGANDiscriminator (no batch norm, so the same network serves as a WGAN-GP critic, whose
    gradient penalty is per example):
    x (N, 28, 28, 1) → conv4x4/2 → LeakyReLU 0.2 (14, 14, w) → conv4x4/2 → LeakyReLU 0.2
      (7, 7, 2w) → Linear → logit (N, 1)
    `r1_forward(x)` is the same function with each convolution written as one matrix product
    (`ops.conv2d_im2col`) on a CPU: equal values and gradients (to float rounding), and on
    XLA:CPU the second-order pass of an R1 penalty through it runs 2.5-6.7x faster per layer
    (benchmarks/r1_conv.py); gan_step's R1 and WGAN-GP's gradient penalty use it. On GPU/TPU
    it is __call__.
DCGAN's guidelines followed: strided convolutions instead of pooling, batch norm in the
generator, ReLU in the generator and LeakyReLU in the discriminator, no hidden dense layers
beyond the generator's projection.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from segen_jax.models.fcn import ConvTranspose
from segen_jax.ops import conv2d_im2col

UPSAMPLING = ("resize", "transpose")


def _positive_int(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: {name} must be an int >= 1, got {value!r}")


def _check_batch(fn, name, x, shape_tail, layout):
    if not hasattr(x, "shape") or tuple(x.shape[1:]) != tuple(shape_tail) or x.ndim != 1 + len(
            shape_tail):
        raise ValueError(f"{fn}: {name} must have shape {layout}, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")


class MLPGenerator(nnx.Module):
    """z (N, latent_dim) -> samples (N, out_dim) (module docstring)."""

    def __init__(self, latent_dim=2, *, hidden=128, layers=3, out_dim=2, rngs: nnx.Rngs):
        for name, value in (("latent_dim", latent_dim), ("hidden", hidden), ("layers", layers),
                            ("out_dim", out_dim)):
            _positive_int("MLPGenerator", name, value)
        sizes = [latent_dim] + [hidden] * layers
        self.latent_dim = latent_dim
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.out = nnx.Linear(hidden, out_dim, rngs=rngs)

    def __call__(self, z):
        _check_batch("MLPGenerator", "z", z, (self.latent_dim,), f"(N, {self.latent_dim})")
        for layer in self.hidden:
            z = jax.nn.relu(layer(z))
        return self.out(z)


class MLPDiscriminator(nnx.Module):
    """x (N, pack·in_dim) -> logits (N, 1) (module docstring)."""

    def __init__(self, in_dim=2, *, hidden=128, layers=3, pack=1, rngs: nnx.Rngs):
        for name, value in (("in_dim", in_dim), ("hidden", hidden), ("layers", layers),
                            ("pack", pack)):
            _positive_int("MLPDiscriminator", name, value)
        sizes = [pack * in_dim] + [hidden] * layers
        self.in_features = pack * in_dim
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):
        _check_batch("MLPDiscriminator", "x", x, (self.in_features,),
                     f"(N, pack·in_dim) = (N, {self.in_features})")
        for layer in self.hidden:
            x = jax.nn.leaky_relu(layer(x), 0.2)
        return self.out(x)


def pack_samples(x, pack):
    """(N·pack, d) -> (N, pack·d): consecutive groups of `pack` samples side by side."""
    _positive_int("pack_samples", "pack", pack)
    if not hasattr(x, "shape") or x.ndim != 2 or x.shape[0] % pack:
        raise ValueError(f"pack_samples: x must be (N·pack, d) with a batch divisible by pack "
                         f"= {pack}, got {getattr(x, 'shape', type(x).__name__)}")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1])


class DCGANGenerator(nnx.Module):
    """z (N, latent_dim) -> images (N, 28, 28, 1) in [0, 1] (module docstring). Batch norm:
    `model.train()` normalises with the batch's statistics, `model.eval()` with the running
    averages (use eval() to sample)."""

    def __init__(self, latent_dim=64, *, width=32, upsample="resize", rngs: nnx.Rngs):
        _positive_int("DCGANGenerator", "latent_dim", latent_dim)
        _positive_int("DCGANGenerator", "width", width)
        if upsample not in UPSAMPLING:
            raise ValueError(f"DCGANGenerator: upsample must be one of {UPSAMPLING}, got "
                             f"{upsample!r}")
        w = width
        self.latent_dim, self.width, self.upsample = latent_dim, w, upsample
        self.project = nnx.Linear(latent_dim, 7 * 7 * 2 * w, rngs=rngs)
        self.bn0 = nnx.BatchNorm(2 * w, momentum=0.9, rngs=rngs)
        if upsample == "resize":
            self.up1 = nnx.Conv(2 * w, w, (3, 3), padding="SAME", rngs=rngs)
            self.up2 = nnx.Conv(w, 1, (3, 3), padding="SAME", rngs=rngs)
        else:
            self.up1 = ConvTranspose(2 * w, w, 4, stride=2, padding=1, rngs=rngs)
            self.up2 = ConvTranspose(w, 1, 4, stride=2, padding=1, rngs=rngs)
        self.bn1 = nnx.BatchNorm(w, momentum=0.9, rngs=rngs)

    def _up(self, layer, x):
        if self.upsample == "resize":
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        return layer(x)

    def __call__(self, z):
        _check_batch("DCGANGenerator", "z", z, (self.latent_dim,), f"(N, {self.latent_dim})")
        x = self.project(z).reshape(z.shape[0], 7, 7, 2 * self.width)
        x = jax.nn.relu(self.bn0(x))
        x = jax.nn.relu(self.bn1(self._up(self.up1, x)))
        return jax.nn.sigmoid(self._up(self.up2, x))


class DCGANDiscriminator(nnx.Module):
    """images (N, 28, 28, 1) -> logits (N, 1) (module docstring)."""

    def __init__(self, *, width=32, rngs: nnx.Rngs):
        _positive_int("DCGANDiscriminator", "width", width)
        w = width
        self.conv1 = nnx.Conv(1, w, (4, 4), strides=2, padding=((1, 1), (1, 1)), rngs=rngs)
        self.conv2 = nnx.Conv(w, 2 * w, (4, 4), strides=2, padding=((1, 1), (1, 1)), rngs=rngs)
        self.out = nnx.Linear(7 * 7 * 2 * w, 1, rngs=rngs)

    def __call__(self, images):
        _check_batch("DCGANDiscriminator", "images", images, (28, 28, 1), "(N, 28, 28, 1)")
        return self._logits(images, lambda layer, x: layer(x))

    def r1_forward(self, images):
        """__call__ with the convolutions as im2col matrix products on a CPU (module
        docstring): the form whose second derivatives XLA:CPU computes fast."""
        if jax.default_backend() != "cpu":
            return self(images)
        _check_batch("DCGANDiscriminator", "images", images, (28, 28, 1), "(N, 28, 28, 1)")
        return self._logits(images, lambda layer, x: conv2d_im2col(
            x, layer.kernel[...], layer.bias[...], stride=2, padding=1))

    def _logits(self, images, conv):
        x = jax.nn.leaky_relu(conv(self.conv1, images), 0.2)
        x = jax.nn.leaky_relu(conv(self.conv2, x), 0.2)
        return self.out(x.reshape(x.shape[0], -1))

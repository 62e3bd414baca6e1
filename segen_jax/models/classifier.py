"""A small CNN for 28x28 digits; its penultimate layer is the GAN chapter's feature network.

    x (B, 28, 28, C) → [conv3x3 → ReLU → conv3x3 → ReLU → pool 2] × 2 → flatten (7·7·2w)
      → dense(features) → ReLU  =: φ(x) ∈ R^features  → dense(num_classes) = logits

pool 2 halves H and W: "max" (the default) is 2x2 max pooling, "avg" 2x2 average pooling and
"stride" keeps every second pixel, x[:, ::2, ::2] (a stride-2 subsampling without pooling,
what chapter 2 compares pooling with). With the defaults (width w = 16, 128 features):
218,490 parameters, whatever the pool.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from segen_jax.ops import avg_pool2d, max_pool2d

POOLS = {"max": lambda x: max_pool2d(x, 2), "avg": lambda x: avg_pool2d(x, 2),
         "stride": lambda x: x[:, ::2, ::2]}


class Classifier(nnx.Module):
    """Logits (B, num_classes) of images (B, 28, 28, in_channels) (any H, W divisible by 4)."""

    def __init__(self, num_classes: int = 10, *, in_channels: int = 1, width: int = 16,
                 features: int = 128, image_size: int = 28, pool: str = "max", rngs: nnx.Rngs):
        if image_size % 4:
            raise ValueError(f"Classifier: image_size must be divisible by 4, got {image_size}")
        if pool not in POOLS:
            raise ValueError(f"Classifier: pool must be one of {sorted(POOLS)}, got {pool!r}")
        conv = lambda cin, cout: nnx.Conv(cin, cout, (3, 3), padding="SAME", rngs=rngs)
        self.image_size, self.in_channels, self.pool = image_size, in_channels, pool
        self.conv1a, self.conv1b = conv(in_channels, width), conv(width, width)
        self.conv2a, self.conv2b = conv(width, 2 * width), conv(2 * width, 2 * width)
        flat = (image_size // 4) ** 2 * 2 * width
        self.hidden = nnx.Linear(flat, features, rngs=rngs)
        self.out = nnx.Linear(features, num_classes, rngs=rngs)

    def features(self, images):
        """φ(x): the penultimate activations (B, features), used for Fréchet distances."""
        expected = (self.image_size, self.image_size, self.in_channels)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"Classifier: images must have shape (B, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}), got {tuple(images.shape)}")
        x = self.feature_map(images)
        return jax.nn.relu(self.hidden(x.reshape(x.shape[0], -1)))

    def feature_map(self, images):
        """The convolutions and pools alone: (B, H, W, C) -> (B, H/4, W/4, 2w), any H, W
        divisible by 4 (chapter 3 slides the classifier over whole scenes with it)."""
        x = jax.nn.relu(self.conv1b(jax.nn.relu(self.conv1a(images))))
        x = POOLS[self.pool](x)
        x = jax.nn.relu(self.conv2b(jax.nn.relu(self.conv2a(x))))
        return POOLS[self.pool](x)

    def __call__(self, images):
        return self.out(self.features(images))


def random_shift(key, images, max_shift: int = 2):
    """Shift each image by an integer (dy, dx) ~ uniform{−s..s}², filling with zeros.

    images (B, H, W, C) → (B, H, W, C): pad by s on each side, then crop at (s+dy, s+dx).
    """
    s = max_shift
    b, h, w, c = images.shape
    padded = jnp.pad(images, ((0, 0), (s, s), (s, s), (0, 0)))
    offsets = jax.random.randint(key, (b, 2), 0, 2 * s + 1)
    crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c))
    return jax.vmap(crop)(padded, offsets)

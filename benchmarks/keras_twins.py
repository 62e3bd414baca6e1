"""The course's networks in Keras 3 on the JAX backend (the course's source text uses Keras),
built layer for layer like segen_jax's and loaded with its parameters, for `train_step`.

KERAS_BACKEND must be "jax" before keras is first imported; `load_keras()` sets it.
"""
import os

import numpy as np


def load_keras():
    """keras on the JAX backend, or None when keras is not installed (or another backend is
    already loaded in this process)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        return None
    return keras if keras.backend.backend() == "jax" else None


def keras_fcn8s(keras, width=16, k=11, size=64):
    """FCN-8s as segen_jax.models.FCN(k, "8s", width=width): returns (model, layers in the
    order of benchmarks.fcn_vs_torch.jax_layers)."""
    layers = keras.layers
    widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
    ordered = []

    def conv(filters, kernel, **kw):
        layer = layers.Conv2D(filters, kernel, padding="same", **kw)
        ordered.append(layer)
        return layer

    images = keras.Input((size, size, 1))
    x, pools = images, []
    for w in widths:
        x = conv(w, 3, activation="relu")(x)
        x = conv(w, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        pools.append(x)
    x = conv(16 * width, 3, activation="relu")(x)          # fc6
    x = conv(16 * width, 1, activation="relu")(x)          # fc7
    score = conv(k, 1)(x)
    for pool in (pools[3], pools[2]):                      # up16 + score_pool4, up8 + score_pool3
        up = layers.Conv2DTranspose(k, 4, strides=2, padding="same")
        ordered.append(up)
        score = layers.Add()([up(score), conv(k, 1)(pool)])
    logits = layers.UpSampling2D(8, interpolation="bilinear")(score)
    return keras.Model(images, logits), ordered


def copy_jax_to_keras(jax_layers, keras_layers):
    """Kernels are HWIO in both; a transposed conv's (k, k, C_out, C_in) is Keras's layout too,
    taps unflipped (checked with random kernels: logits equal to 6e-8, 0.27 apart if flipped)."""
    assert len(jax_layers) == len(keras_layers), (len(jax_layers), len(keras_layers))
    for src, dst in zip(jax_layers, keras_layers):
        dst.set_weights([np.asarray(src.kernel[...], np.float32),
                         np.asarray(src.bias[...], np.float32)])


class KerasStep:
    """`model.train_on_batch` of the Keras twin, compiled by Keras (jit on the JAX backend),
    with Adam(1e-3, epsilon 1e-8 as optax's) and the mean sparse cross-entropy of logits."""

    def __init__(self, keras, model, batches):
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=True)
        self.model, self.batches, self.calls = model, batches, 0

    def step(self):
        x, y = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return float(self.model.train_on_batch(x, y))

    def run(self, n):
        for _ in range(n):
            self.step()       # train_on_batch returns the loss on the host: synchronous

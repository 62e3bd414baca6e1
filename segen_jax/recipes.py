"""How each model of the course is trained and evaluated: the recipes behind `segen-jax`.

A recipe is four functions and defaults; the CLI and the notebooks share them, so a model
trained from the command line and one trained in a chapter are the same computation.
"""
from dataclasses import dataclass, field
from typing import Callable

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from segen_jax import data
from segen_jax.models.classifier import Classifier, random_shift
from segen_jax.train import nnx_model, nnx_state, nnx_step


@dataclass(frozen=True)
class Recipe:
    build: Callable      # (seed, lr, steps) -> (graphdef, state, step_fn)
    batches: Callable    # (batch_size, seed) -> (start_step -> iterator of batches)
    evaluate: Callable   # (graphdef, state) -> dict of metrics on the held-out data
    defaults: dict = field(default_factory=dict)


# ---- classifier: the small CNN on MNIST digits ------------------------------------------------

def classifier_loss(model, batch, key):
    """Cross-entropy of the digits shifted by up to 2 pixels (augmentation), and accuracy."""
    images, labels = batch
    logits = model(random_shift(key, images, 2))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def build_classifier(seed: int, lr: float, steps: int):
    """Classifier, Adam with a cosine decay of the learning rate from lr to 0.05·lr over
    `steps`, then 0.05·lr (so a run resumed past `steps` still learns)."""
    model = Classifier(rngs=nnx.Rngs(seed))
    schedule = optax.cosine_decay_schedule(lr, steps, alpha=0.05)
    optimizer = nnx.Optimizer(model, optax.adam(schedule), wrt=nnx.Param)
    graphdef, state = nnx_state(model, optimizer, seed=seed)
    return graphdef, state, nnx_step(graphdef, classifier_loss)


def classifier_batches(batch_size: int, seed: int):
    images, labels = data.load_mnist("train")
    return lambda start: data.batches((images, labels), batch_size, seed=seed, start_step=start)


@nnx.jit
def _argmax_class(model, images):
    return jnp.argmax(model(images), -1)


def predict(model, images, *, batch_size: int = 500):
    """Argmax class of each image, in batches (images (N, 28, 28, 1) -> (N,) int)."""
    return np.concatenate([np.asarray(_argmax_class(model, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])


def evaluate_classifier(graphdef, state):
    """{"accuracy": fraction of the held-out MNIST test digits classified correctly}."""
    images, labels = data.load_mnist("test")
    return {"accuracy": float(np.mean(predict(nnx_model(graphdef, state), images) == labels))}


RECIPES = {
    "classifier": Recipe(build_classifier, classifier_batches, evaluate_classifier,
                         defaults={"steps": 1000, "batch_size": 64, "lr": 2e-3}),
}

"""How each model of the course is trained and evaluated: the recipes behind `segen-jax`.

A recipe is four functions and defaults; the CLI, the shipped weights and the notebooks share
them, so a model trained from the command line and one trained in a chapter are the same
computation.
"""
import functools
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from segen_jax import data, metrics, weights
from segen_jax import losses
from segen_jax.losses import pixel_cross_entropy
from segen_jax.models.classifier import Classifier, random_shift
from segen_jax.models.deeplab import DeepLabV3, DeepLabV3Plus
from segen_jax.models.fcn import FCN, TinyFCN, from_classifier
from segen_jax.models.gan import DCGANDiscriminator, DCGANGenerator
from segen_jax.models.vae import VAE, reparameterize
from segen_jax.gan_step import gan_state, gan_step, sample
from segen_jax.train import nnx_model, nnx_state, nnx_step


@dataclass(frozen=True)
class Recipe:
    model: Callable           # nnx.Rngs -> a freshly initialised model
    build: Callable           # (seed, lr, steps) -> (graphdef, state, step_fn)
    batches: Callable         # (batch_size, seed) -> (start_step -> iterator of batches)
    evaluate_model: Callable  # model -> dict of metrics on the held-out data
    defaults: dict = field(default_factory=dict)
    sample: Callable | None = None   # (model, n, seed) -> n images (N, 28, 28, 1) in [0, 1]
    # model -> the held-out metrics logged while training, where evaluate_model is too slow to
    # run every few hundred steps (default: evaluate_model)
    evaluate_while_training: Callable | None = None

    def evaluate(self, graphdef, state, *, while_training=False):
        """The held-out metrics of the model in a training state made by `build`."""
        fn = (self.evaluate_while_training if while_training else None) or self.evaluate_model
        return fn(nnx_model(graphdef, state))


def cosine_rate(lr: float, steps: int):
    """The recipes' learning-rate schedule: η(t) = lr·(0.05 + 0.95·(1 + cos(π·t/steps))/2) for
    t <= steps, then 0.05·lr (optax.cosine_decay_schedule with alpha = 0.05)."""
    return optax.cosine_decay_schedule(lr, steps, alpha=0.05)


def adam_cosine(model_fn, loss_fn, *, compiler_options="auto"):
    """build(seed, lr, steps) for model_fn(rngs): Adam with a cosine decay of the learning rate
    from lr to 0.05·lr over `steps`, then 0.05·lr (so a run resumed past `steps` still learns);
    the step is `nnx_step(..., parts="auto", compiler_options=compiler_options)`, which on a CPU
    cuts batches of 16 or more into parts that run side by side (1.00-1.13x faster on 2 cores
    with train.CPU_OPTIONS, 1.25-1.6x with XLA's defaults; benchmarks/README.md)."""
    def build(seed: int, lr: float, steps: int):
        model = model_fn(nnx.Rngs(seed))
        optimizer = nnx.Optimizer(model, optax.adam(cosine_rate(lr, steps)), wrt=nnx.Param)
        graphdef, state = nnx_state(model, optimizer, seed=seed)
        return graphdef, state, nnx_step(graphdef, loss_fn, parts="auto",
                                         compiler_options=compiler_options)
    return build


# ---- classifier: the small CNN on MNIST digits ------------------------------------------------

def classifier_loss(model, batch, key):
    """Cross-entropy of the digits shifted by up to 2 pixels (augmentation), and accuracy."""
    images, labels = batch
    logits = model(random_shift(key, images, 2))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def classifier_batches(batch_size: int, seed: int):
    images, labels = data.load_mnist("train")
    return lambda start: data.batches((images, labels), batch_size, seed=seed, start_step=start)


@nnx.jit
def _argmax(model, images):
    return jnp.argmax(model(images), -1)


def predict(model, images, *, batch_size: int = 250):
    """Argmax over the model's last axis, in batches: the class of each image for a classifier
    ((N, 28, 28, 1) -> (N,)), of each pixel for a segmenter ((N, H, W, C) -> (N, H, W))."""
    return np.concatenate([np.asarray(_argmax(model, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])


@nnx.jit
def _probabilities(model, images):
    return jax.nn.softmax(model(images), -1)


def predict_shift_average(model, images, *, shifts=(0, 4), margin=8, multiple=32,
                          batch_size: int = 100):
    """Per-pixel classes of a segmenter from its probabilities averaged over shifted inputs.

    Each image (N, H, W, C) is pasted at (margin + dy, margin + dx) on a zero canvas whose
    sides are H + 2·margin + max(shifts) rounded up to a multiple of `multiple` (the network's
    input stride), for every (dy, dx) in shifts x shifts. With P_s the softmax of the model on
    the canvas shifted by s, cropped back to the image, the prediction is
        argmax_k (1 / |S|) Σ_s P_s[..., k]                     -> (N, H, W) int.
    A stride-8 network sees a different pooling grid under each shift that is not a multiple
    of 8, so the average recovers detail finer than its output stride (Long et al.'s
    shift-and-stitch, Sec. 3.2, as an average instead of an interleave); the margin keeps
    the image off the zero padding of the deep layers. shifts=(0,), margin=0, with H and W
    already multiples, is `predict`.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError("predict_shift_average: images must be (N, H, W, C), got shape "
                         f"{images.shape}")
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list, range, np.ndarray)) else shifts
    bad = lambda s: isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
    if not isinstance(shifts, tuple) or not shifts or any(bad(s) for s in shifts):
        raise ValueError("predict_shift_average: shifts must be a non-empty sequence of ints "
                         f">= 0, got {shifts!r}")
    for name, value, low in (("margin", margin, 0), ("multiple", multiple, 1),
                             ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"predict_shift_average: {name} must be an int >= {low}, "
                             f"got {value!r}")
    n, h, w, c = images.shape
    side = lambda length: -(-(length + 2 * margin + max(shifts)) // multiple) * multiple
    canvas_shape = (side(h), side(w), c)
    out = []
    for i in range(0, n, batch_size):
        batch = images[i:i + batch_size]
        total = 0.0
        for dy in shifts:
            for dx in shifts:
                y, x = margin + dy, margin + dx
                canvas = np.zeros((len(batch),) + canvas_shape, np.float32)
                canvas[:, y:y + h, x:x + w] = batch
                total = total + np.asarray(_probabilities(model, canvas))[:, y:y + h, x:x + w]
        out.append(np.argmax(total, -1))
    return np.concatenate(out)


def evaluate_classifier(model):
    """{"accuracy": fraction of the held-out MNIST test digits classified correctly}."""
    images, labels = data.load_mnist("test")
    return {"accuracy": float(np.mean(predict(model, images) == labels))}


# ---- segmenters: TinyFCN, FCN-32s/16s/8s and DeepLab v3/v3+ on digit scenes ------------------

SEGMENTERS = {"tinyfcn": lambda rngs: TinyFCN(11, rngs=rngs),
              "fcn32s": lambda rngs: FCN(11, "32s", rngs=rngs),
              "fcn16s": lambda rngs: FCN(11, "16s", rngs=rngs),
              "fcn8s": lambda rngs: FCN(11, "8s", rngs=rngs),
              "deeplabv3": lambda rngs: DeepLabV3(11, output_stride=8, rngs=rngs),
              "deeplabv3plus": lambda rngs: DeepLabV3Plus(11, output_stride=8, rngs=rngs)}


SCENES = {"n_train": 6000, "n_test": 500, "label_dilation": 3, "overlap": False,
          "scale": (0.8, 1.1)}


@functools.lru_cache(maxsize=1)
def digit_scene_data():
    """((x_train, y_train), (x_test, y_test)): 6,000 training and 500 held-out 64x64 scenes
    of 11 classes (background + 10 digits): 1-3 digits of 22-31 pixels whose boxes do not
    overlap, each digit's label widened by 3 pixels (`data.load_digit_scenes(**SCENES)`).
    Chapter 3 measures why: where digits overlap, the image (the max of both strokes) does not
    show which one the label says is on top, and thin stroke labels cap what a stride-8
    segmenter can score."""
    return data.load_digit_scenes(**SCENES)


def from_trained_classifier(make):
    """model_fn(rngs): `make(rngs)` with the first two conv blocks copied from the shipped
    digit classifier (`models.from_classifier`), the transfer step of Long et al."""
    return lambda rngs: from_classifier(make(rngs), weights.load("classifier"))


def segmentation_loss(model, batch, key):
    """Mean per-pixel cross-entropy, and the pixel accuracy of the batch."""
    images, labels = batch
    logits = model(images)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return pixel_cross_entropy(logits, labels), {"pixel_accuracy": accuracy}


def segmenter_batches(batch_size: int, seed: int):
    train, _ = digit_scene_data()
    return lambda start: data.batches(train, batch_size, seed=seed, start_step=start)


def segmentation_metrics(predicted, labels, num_classes=11):
    """{"mean_iou", "pixel_accuracy", "boundary_f1" (2-pixel tolerance)} of label maps."""
    return {"mean_iou": metrics.mean_iou(predicted, labels, num_classes)[0],
            "pixel_accuracy": metrics.pixel_accuracy(predicted, labels, num_classes),
            "boundary_f1": metrics.boundary_f1(predicted, labels, num_classes, tolerance=2)}


def evaluate_segmenter(model):
    """Segmentation metrics on the 500 held-out digit scenes."""
    _, (images, labels) = digit_scene_data()
    return segmentation_metrics(predict(model, images), labels)


# Batch 4: on a 2-core CPU an FCN-8s step costs about batch-proportional time, and in the same
# ~2 minutes 3,200 steps of 4 scenes reached test mIoU 0.53 against 0.45 for 800 of 16 and 0.35
# for 400 of 32 (chapter 3's table, rows 2 and 5-7, measured on the generator's overlapping
# layout with experiments/fcn_digit_scenes.py).
SEGMENTER_DEFAULTS = {"steps": 10000, "batch_size": 4, "lr": 1e-3}

# ---- image GANs: DCGAN and WGAN-GP on MNIST digits ---------------------------------------------

GAN_LATENT = 64
GAN_SAMPLES = 1000
DCGAN_R1 = {"r1_weight": 1.0, "r1_samples": 16}   # the dcgan recipe's R1 penalty (gan_step)


def gan_build(loss, *, n_critic, betas, parts=1, cosine=False, r1_weight=0.0, r1_samples=None,
              width=32, augment=None):
    """build(seed, lr, steps) for a DCGAN generator/discriminator pair trained by gan_step with
    `loss`, both with Adam(lr, b1, b2): at a constant rate (`steps` is not used), or with
    cosine=True decayed like adam_cosine's, from lr to 0.05·lr over `steps`, then 0.05·lr. The
    discriminator's passes run in `parts` (gan_step). The DCGAN recipe uses parts="auto": the
    same losses up to float rounding, faster on a CPU. WGAN-GP keeps parts=1, since its penalty
    would draw its interpolation weights per part and the shipped run (trained whole) would no
    longer be reproduced. r1_weight, r1_samples: γ and m of gan_step's R1 penalty (γ = 0
    leaves it out; the DCGAN recipe takes DCGAN_R1; experiments/dcgan_probes.py measures it).
    build(..., ema=β) also keeps the generator's moving average (gan_step's ema; read it with
    gan_models(graphdef, state, ema=True)). width: the networks' width (DCGANGenerator's and
    DCGANDiscriminator's; the recipes keep the default 32). augment: gan_step's (None: D sees
    the images as they are, as in the recipes; experiments/dcgan_probes.py --shift/--cutout)."""
    def build(seed: int, lr: float, steps: int, ema=None):
        generator = DCGANGenerator(GAN_LATENT, width=width, rngs=nnx.Rngs(seed))
        discriminator = DCGANDiscriminator(width=width, rngs=nnx.Rngs(seed + 1))
        rate = cosine_rate(lr, steps) if cosine else lr
        adam = lambda m: nnx.Optimizer(m, optax.adam(rate, b1=betas[0], b2=betas[1]),
                                       wrt=nnx.Param)
        graphdef, state = gan_state(generator, discriminator, adam(generator),
                                    adam(discriminator), seed=seed, ema=ema is not None)
        return graphdef, state, gan_step(graphdef, loss, latent_dim=GAN_LATENT,
                                         n_critic=n_critic, parts=parts, r1_weight=r1_weight,
                                         r1_samples=r1_samples, ema=ema, augment=augment)
    return build


def gan_batches(n_critic):
    """batches(batch_size, seed): the shipped MNIST training digits, n_critic·batch_size a
    step (each critic update sees its own batch)."""
    def batches(batch_size: int, seed: int):
        images, _ = data.load_mnist("train")
        return lambda start: data.batches(images, batch_size * n_critic, seed=seed,
                                          start_step=start)
    return batches


@functools.lru_cache(maxsize=1)
def _real_baseline():
    """(classifier, fd_real, the test digits' feature statistics (mean, covariance), read-only):
    loaded and computed once per process (a later change of SEGEN_DATA in the same process is
    not seen)."""
    classifier = weights.load("classifier")
    train_images, _ = data.load_mnist("train")
    test_images, _ = data.load_mnist("test")
    test_stats = metrics.image_feature_stats(test_images[:GAN_SAMPLES], classifier=classifier)
    train_stats = metrics.image_feature_stats(train_images[:GAN_SAMPLES], classifier=classifier)
    for array in test_stats:
        array.flags.writeable = False
    return classifier, metrics.frechet_distance(*train_stats, *test_stats), test_stats


def evaluate_generator(generator):
    """{"fd": Fréchet distance of 1,000 samples to 1,000 held-out test digits on the
    classifier's features, "fd_real": the same for 1,000 training digits (the real-vs-real
    baseline at the same sample sizes), "n_samples": 1000}."""
    classifier, fd_real, test_stats = _real_baseline()
    fake = np.asarray(sample(generator, GAN_SAMPLES, latent_dim=GAN_LATENT, seed=1234))
    fake_stats = metrics.image_feature_stats(fake, classifier=classifier)
    return {"fd": metrics.frechet_distance(*fake_stats, *test_stats), "fd_real": fd_real,
            "n_samples": GAN_SAMPLES}


def _gan_recipe(loss, n_critic, betas, lr, parts=1, cosine=False, steps=3000, **r1):
    return Recipe(lambda rngs: DCGANGenerator(GAN_LATENT, rngs=rngs),
                  gan_build(loss, n_critic=n_critic, betas=betas, parts=parts, cosine=cosine,
                            **r1),
                  gan_batches(n_critic),
                  evaluate_generator, defaults={"steps": steps, "batch_size": 64, "lr": lr},
                  sample=lambda g, n, seed: sample(g, n, latent_dim=GAN_LATENT, seed=seed))


# ---- VAE: the conv VAE on dynamically binarised MNIST digits ---------------------------------

VAE_LATENT = 32
VAE_K = 100            # importance samples of the reported NLL (Burda et al. report k = 5000)
VAE_TEST_SEED = 1234   # the one binarisation of the test digits that every evaluation uses


VAE_SHIFT = 1   # training digits shifted at random by up to 1 pixel (see beta_vae_loss)


def beta_vae_loss(beta, *, max_shift=VAE_SHIFT):
    """loss_fn(model, batch, key) = β·KL − reconstruction of the digits shifted at random by up
    to max_shift pixels (`random_shift`) and then binarised afresh (dynamic binarisation), in
    nats, with the mean reconstruction term E_q[log p(x|z)] (one reparameterised z) and the mean
    KL as metrics. β = 1 is −ELBO; β ≠ 1 weights the KL (β-VAE, Higgins et al. 2017) and is no
    longer a bound on −log p(x). Why the shift: on the 4,000 shipped digits the VAE overfits
    (after 15,000 steps the training ELBO was about −93 nats, the test ELBO −100.1); with ±1
    pixel the same run reached a test NLL of 92.8 against 93.6 nats (IWAE, k = 100), at the cost
    of a slower start (100.3 against 99.0 after 1,500 steps)."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"beta_vae_loss: beta must be a number >= 0, got {beta!r}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"beta_vae_loss: max_shift must be an int >= 0, got {max_shift!r}")

    def loss_fn(model, batch, key):
        binarize_key, z_key, shift_key = jax.random.split(key, 3)
        if max_shift:
            batch = random_shift(shift_key, batch, max_shift)
        x = losses.binarize(binarize_key, batch)
        mu, logvar = model.encode(x)
        logits = model.decode(reparameterize(z_key, mu, logvar))
        reconstruction = jnp.mean(losses.bernoulli_log_likelihood(logits, x))
        kl = jnp.mean(losses.gaussian_kl(mu, logvar))
        return beta * kl - reconstruction, {"reconstruction": reconstruction, "kl": kl}

    return loss_fn


vae_loss = beta_vae_loss(1.0)   # −mean ELBO per digit, the VAE's training loss


def vae_batches(batch_size: int, seed: int):
    images, _ = data.load_mnist("train")
    return lambda start: data.batches(images, batch_size, seed=seed, start_step=start)


@functools.partial(nnx.jit, static_argnums=3)
def _vae_bounds(model, x, key, k):
    elbo_key, iwae_key = jax.random.split(key)
    return losses.elbo(model, x, elbo_key), losses.iwae_bound(model, x, iwae_key, k)


def likelihood_bounds(model, images, *, k=VAE_K, seed=0, batch_size=None):
    """(ELBO, IWAE bound L_k), each (N,) in nats, of binary images (N, 28, 28, 1) under a VAE,
    computed in batches of batch_size images (default: about 10,000 decoder passes a batch)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"likelihood_bounds: k must be an int >= 1, got {k!r}")
    k = int(k)
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"likelihood_bounds: images must have shape (N, 28, 28, 1), got "
                         f"{images.shape}")
    batch_size = batch_size or max(1, 10_000 // k)
    elbos, bounds = [], []
    for i in range(0, len(images), batch_size):
        key = jax.random.fold_in(jax.random.key(seed), i)      # independent across seeds
        e, b = _vae_bounds(model, images[i:i + batch_size], key, k)
        elbos.append(np.asarray(e))
        bounds.append(np.asarray(b))
    return np.concatenate(elbos), np.concatenate(bounds)


@functools.lru_cache(maxsize=1)
def binarized_test_digits():
    """The held-out test digits (1,000 shipped, 10,000 with SEGEN_DATA's full MNIST) binarised
    once (seed VAE_TEST_SEED), so that every evaluation scores the same binary images."""
    images, _ = data.load_mnist("test")
    return np.asarray(losses.binarize(jax.random.key(VAE_TEST_SEED), jnp.asarray(images)))


def evaluate_vae(model, *, k=VAE_K, n=None):
    """{"elbo": mean test ELBO, "nll_iwae": mean −L_k, "k": k}, in nats per digit, on the
    (first n of the) binarised held-out test digits (binarized_test_digits)."""
    images = binarized_test_digits()[:n]
    elbo, bound = likelihood_bounds(model, images, k=k)
    return {"elbo": float(np.mean(elbo)), "nll_iwae": float(-np.mean(bound)), "k": k}


def sample_vae(model, n, seed=0):
    """n digits (n, 28, 28, 1) in [0, 1]: the Bernoulli means sigmoid(decode(z)), z ~ N(0, I)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sample_vae: n must be an int >= 1, got {n!r}")
    z = jax.random.normal(jax.random.key(seed), (n, model.latent_dim))
    return jax.nn.sigmoid(model.decode(z))


GENERATORS = ("dcgan", "wgan-gp", "vae")

RECIPES = {
    "classifier": Recipe(lambda rngs: Classifier(rngs=rngs),
                         adam_cosine(lambda rngs: Classifier(rngs=rngs), classifier_loss),
                         classifier_batches, evaluate_classifier,
                         defaults={"steps": 1000, "batch_size": 64, "lr": 2e-3}),
    **{name: Recipe(make, adam_cosine(from_trained_classifier(make), segmentation_loss),
                    segmenter_batches,
                    evaluate_segmenter, defaults=dict(SEGMENTER_DEFAULTS))
       for name, make in SEGMENTERS.items()},
    # Radford et al.: Adam 2e-4, β1 = 0.5, non-saturating loss. The course's small DCGAN learns
    # faster at 2e-3 decayed by a cosine: after 3,000 steps FD 187 against 327 at a constant 2e-4
    # (one seed, one core each, decayed to 0.1·lr in that probe, 2026-12-02; 1e-3 decayed the
    # same way: 264); 10,000 steps of this schedule without R1 reached 153, against 246 at 2e-4
    # (170 after 24,000). R1 on D (DCGAN_R1, Mescheder et al. 2018; γ = 1 on 16 of the 64 real
    # digits, 1.08x the step's cost through DCGANDiscriminator.r1_forward, 1.42x through XLA's
    # convolutions) then brought the same 10,000 steps to 79.3 (2026-12-03, one
    # seed, `segen-jax train dcgan --steps 10000`, 577 s on 2 cores; FD 101.7 at step 5,000
    # against 146.0 without R1), with D's loss held at 1.35-1.36 (near log 4) where without R1
    # it kept falling (D memorising the 4,000 shipped digits, as at width 64 below); with R1,
    # longer training pays: 20,000 steps (1,248 s) reached 61.5, 3.2x the real-vs-real floor
    # of 19.1; 30,000 steps (the recipe's default since) 57.5 (3.01x; 54.8-57.5 over the last
    # 3,000), and the shipped run, those 30,000 resumed for 2,000 steps at the schedule's final
    # 0.05·lr, 56.7 (2.97x; 54.7-56.8 over those 2,000; 2,135 s on 2 cores shared with probes,
    # 2026-12-03). experiments/dcgan_probes.py has the γ, subset and lazy-R1 probes. Wider
    # networks did not pay for their cost (without R1): at width 64 (G 128 → 64 channels,
    # D 64 → 128, each step 2.4x slower) `segen-jax train`
    # reached 149 after 4,000 steps decayed over 4,000 (13 min on 2 cores, about 10,000 steps at
    # width 32); decayed over 10,000 steps instead, width 64 reached 131 at step 2,500, then rose
    # to 190 at 5,500 while D's loss fell from 0.73 to 0.40. Shifting every image D sees by up
    # to 2 px (DiffAugment's translation) did not help at width 32 (191 against 173 after 4,000
    # steps, one seed, without R1), nor with R1 (gan_step(augment=diff_augment), 2026-12-07:
    # 163.8 with 2 px, 238.5 with 4 px and a 14x14 cutout, against 126.9 for the recipe after
    # 4,000 steps; experiments/dcgan_probes.py). Gulrajani et al.: Adam 1e-4, β = (0.5, 0.9), 5 critic
    # updates per generator update, λ = 10.
    "dcgan": _gan_recipe("non-saturating", 1, (0.5, 0.999), 2e-3, parts="auto", cosine=True,
                         steps=30000, **DCGAN_R1),
    "wgan-gp": _gan_recipe("wgan-gp", 5, (0.5, 0.9), 1e-4),
    # The VAE keeps XLA's default CPU options (YNNPACK convolutions): in 8 parts of 8 they ran
    # its step 1.5x faster than train.CPU_OPTIONS (benchmarks/RESULTS_xla_cpu.md); since
    # ops.conv2d splits its kernel offsets, 1.14x in one run, inside its windows' spread
    # (benchmarks/README.md, "VAE step").
    "vae": Recipe(lambda rngs: VAE(VAE_LATENT, rngs=rngs),
                  adam_cosine(lambda rngs: VAE(VAE_LATENT, rngs=rngs), vae_loss,
                              compiler_options=None), vae_batches,
                  evaluate_vae, defaults={"steps": 15000, "batch_size": 64, "lr": 3e-3},
                  sample=sample_vae,
                  evaluate_while_training=functools.partial(evaluate_vae, k=10, n=500)),
}

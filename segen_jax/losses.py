"""Losses. Segmentation: per-pixel cross-entropy and the soft Dice loss. GANs: the minimax,
non-saturating, Wasserstein and hinge losses, the gradient penalty and R1. VAEs: the Gaussian KL,
the Bernoulli likelihood, the ELBO and the importance-weighted bound (the last two sections).

logits: (N, H, W, K) unnormalised class scores; labels: (N, H, W) integers in [0, K), or
ignore_index for pixels that count nowhere (PASCAL VOC's 255 on object borders).
p = softmax(logits) over the last axis; y = one-hot(labels); M = the non-ignored pixels.

pixel_cross_entropy:  L = Σ_{n,h,w ∈ M} a_y · (−log p_y) / Σ_{n,h,w ∈ M} a_y
    with class weights a (default all 1: the plain mean over the pixels in M). Weighting the
    rare classes up (e.g. a_c ∝ 1/frequency) counters a background that covers most pixels.
dice_loss:  L = 1 − (1/K) Σ_c (2 Σ_M p_c·y_c + ε) / (Σ_M p_c + Σ_M y_c + ε)
    (Milletari et al., V-Net, 2016, with the squares left out): a soft IoU-like overlap per
    class, so each class counts the same however few pixels it has. ε = 1 keeps a class that is
    absent from both prediction and labels at Dice 1 instead of 0/0.

Labels outside [0, K) (other than ignore_index) raise ValueError when the labels are concrete
arrays; under jax.jit they cannot be inspected, so check the data once before training.
"""
import jax
import jax.numpy as jnp
import numpy as np


def _check(fn, logits, labels, ignore_index):
    for name, value, layout in (("logits", logits, "(N, H, W, K)"), ("labels", labels, "(N, H, W)")):
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            raise TypeError(f"{fn}: {name} must be an array of shape {layout}, got "
                            f"{type(value).__name__}")
    if logits.ndim != 4:
        raise ValueError(f"{fn}: logits must have shape (N, H, W, K) = 4 dims, got shape "
                         f"{tuple(logits.shape)}")
    if tuple(labels.shape) != tuple(logits.shape[:3]):
        raise ValueError(f"{fn}: labels must have shape (N, H, W) = {tuple(logits.shape[:3])} "
                         f"(logits' first three axes), got shape {tuple(labels.shape)}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{fn}: logits must be a float array, got dtype {logits.dtype}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{fn}: labels must hold integer class indices, got dtype {labels.dtype}")
    if not isinstance(labels, jax.core.Tracer):
        values = np.asarray(labels)
        k = logits.shape[-1]
        bad = (values < 0) | (values >= k)
        if ignore_index is not None:
            bad &= values != ignore_index
        if bad.any():
            allowed = f"[0, {k})" + ("" if ignore_index is None else
                                     f" or ignore_index = {ignore_index}")
            raise ValueError(f"{fn}: labels hold {np.unique(values[bad])[:5].tolist()} outside "
                             f"{allowed} (K = {k} classes from logits' last axis)")


def _mask_and_targets(logits, labels, ignore_index):
    """(M (N, H, W) float 0/1, labels with ignored pixels set to class 0, safe to index)."""
    if ignore_index is None:
        return jnp.ones(labels.shape, logits.dtype), labels
    keep = labels != ignore_index
    return keep.astype(logits.dtype), jnp.where(keep, labels, 0)


def pixel_cross_entropy(logits, labels, *, ignore_index=None, class_weights=None):
    """Mean over non-ignored pixels of −log softmax(logits)[label], each pixel weighted by
    class_weights[label] (K,) if given (module docstring). Returns a scalar; 0 if every pixel
    is ignored."""
    fn = "pixel_cross_entropy"
    _check(fn, logits, labels, ignore_index)
    if class_weights is not None:
        if np.shape(class_weights) != (logits.shape[-1],):
            raise ValueError(f"{fn}: class_weights must have shape (K,) = ({logits.shape[-1]},), "
                             f"got shape {np.shape(class_weights)}")
        if not isinstance(class_weights, jax.core.Tracer) and not (
                np.all(np.isfinite(class_weights)) and np.all(np.asarray(class_weights) >= 0)):
            raise ValueError(f"{fn}: class_weights must be finite and >= 0, got "
                             f"{np.asarray(class_weights).tolist()}")
    mask, targets = _mask_and_targets(logits, labels, ignore_index)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    if class_weights is not None:
        mask = mask * jnp.asarray(class_weights, logits.dtype)[targets]
    return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1e-12)


def dice_loss(logits, labels, *, ignore_index=None, eps=1.0):
    """1 − mean over classes of the soft Dice overlap of softmax(logits) with one-hot(labels),
    sums taken over all non-ignored pixels of the batch (module docstring). Scalar in [0, 1]."""
    _check("dice_loss", logits, labels, ignore_index)
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"dice_loss: eps must be a number > 0, got {eps!r}")
    mask, targets = _mask_and_targets(logits, labels, ignore_index)
    p = jax.nn.softmax(logits, axis=-1) * mask[..., None]
    y = jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype) * mask[..., None]
    overlap = jnp.sum(p * y, axis=(0, 1, 2))
    dice = (2 * overlap + eps) / (jnp.sum(p, axis=(0, 1, 2)) + jnp.sum(y, axis=(0, 1, 2)) + eps)
    return 1 - jnp.mean(dice)


# ---- GANs ------------------------------------------------------------------------------------
# D(x) = σ(l(x)) for a discriminator that outputs logits l; a critic outputs real scores f(x).
# All losses are means over the batch and are *minimised* by the player they belong to;
# log σ(l) = −softplus(−l) and log(1 − σ(l)) = −softplus(l) keep them finite for any logit.

def _scores(fn, **arrays):
    for name, value in arrays.items():
        if not hasattr(value, "shape") or value.ndim not in (1, 2) or (
                value.ndim == 2 and value.shape[1] != 1):
            raise ValueError(f"{fn}: {name} must be one score per example, shape (N,) or "
                             f"(N, 1), got {getattr(value, 'shape', type(value).__name__)}")


def discriminator_loss(real_logits, fake_logits):
    """Minimax discriminator loss −E[log D(x)] − E[log(1 − D(G(z)))]
    = mean softplus(−l_real) + mean softplus(l_fake)   (Goodfellow et al. 2014)."""
    _scores("discriminator_loss", real_logits=real_logits, fake_logits=fake_logits)
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss_saturating(fake_logits):
    """The minimax game's own generator loss E[log(1 − D(G(z)))] = −mean softplus(l_fake):
    its gradient vanishes where D confidently rejects the fakes (l_fake ≪ 0)."""
    _scores("generator_loss_saturating", fake_logits=fake_logits)
    return -jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss_non_saturating(fake_logits):
    """−E[log D(G(z))] = mean softplus(−l_fake): the same fixed point, strong gradients where
    D rejects the fakes (Goodfellow et al.'s practical choice)."""
    _scores("generator_loss_non_saturating", fake_logits=fake_logits)
    return jnp.mean(jax.nn.softplus(-fake_logits))


def wasserstein_critic_loss(real_scores, fake_scores):
    """E[f(G(z))] − E[f(x)]: the critic maximises the Kantorovich-Rubinstein dual
    E[f(x)] − E[f(G(z))] (Arjovsky et al. 2017); f must be kept ~1-Lipschitz (gradient_penalty)."""
    _scores("wasserstein_critic_loss", real_scores=real_scores, fake_scores=fake_scores)
    return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator_loss(fake_scores):
    """−E[f(G(z))]."""
    _scores("wasserstein_generator_loss", fake_scores=fake_scores)
    return -jnp.mean(fake_scores)


def hinge_discriminator_loss(real_scores, fake_scores):
    """E[max(0, 1 − f(x))] + E[max(0, 1 + f(G(z)))] (the generator minimises −E[f(G(z))],
    wasserstein_generator_loss)."""
    _scores("hinge_discriminator_loss", real_scores=real_scores, fake_scores=fake_scores)
    return jnp.mean(jax.nn.relu(1 - real_scores)) + jnp.mean(jax.nn.relu(1 + fake_scores))


def gradient_penalty(critic, real, fake, key):
    """WGAN-GP's penalty E[(‖∇_x̂ f(x̂)‖₂ − 1)²] (Gulrajani et al. 2017) at
    x̂ = ε·real + (1 − ε)·fake, with ε ~ U[0, 1] drawn once per example (shape (N, 1, ..., 1)).
    critic: a callable mapping a batch (N, ...) to scores (N,) or (N, 1); real, fake: the same
    shape (N, ...); the norm is over all of an example's axes. Scalar; 0 for a critic whose
    gradient has norm 1 everywhere (a linear critic with a unit-norm weight)."""
    if not callable(critic):
        raise TypeError(f"gradient_penalty: critic must be callable, got {type(critic).__name__}")
    for name, value in (("real", real), ("fake", fake)):
        if not hasattr(value, "shape") or value.ndim < 2:
            raise ValueError(f"gradient_penalty: {name} must be a batch (N, ...), got "
                             f"{getattr(value, 'shape', type(value).__name__)}")
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real and fake must have the same shape, got "
                         f"{real.shape} and {fake.shape}")
    if not jnp.issubdtype(real.dtype, jnp.floating):
        raise TypeError(f"gradient_penalty: real and fake must be float arrays, got dtype "
                        f"{real.dtype}")
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    mixed = eps * real + (1 - eps) * fake
    _scores("gradient_penalty", critic_output=jax.eval_shape(critic, mixed))
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(mixed)       # each score depends on its x̂
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1) ** 2)


def r1_penalty(critic, real):
    """R1, the discriminator's squared gradient norm on real data, E_x[‖∇_x D(x)‖₂²]
    (Mescheder et al. 2018, "Which training methods for GANs do actually converge?"), with D
    the logit. Added as (γ/2)·R1 to the discriminator's loss it pushes D towards flatness on the
    data, where the generator has converged, and keeps D from memorising a small training set.
    critic: a callable mapping a batch (N, ...) to scores (N,) or (N, 1); real (N, ...): the
    norm is over all of an example's axes. Scalar; ‖w‖² for a linear critic D(x) = w·x + b."""
    if not callable(critic):
        raise TypeError(f"r1_penalty: critic must be callable, got {type(critic).__name__}")
    if not hasattr(real, "shape") or real.ndim < 2:
        raise ValueError(f"r1_penalty: real must be a batch (N, ...), got "
                         f"{getattr(real, 'shape', type(real).__name__)}")
    if not jnp.issubdtype(real.dtype, jnp.floating):
        raise TypeError(f"r1_penalty: real must be a float array, got dtype {real.dtype}")
    _scores("r1_penalty", critic_output=jax.eval_shape(critic, real))
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(real)       # each score depends on its x
    return jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))


# ---- VAEs ------------------------------------------------------------------------------------
# q(z|x) = N(μ, diag e^{log σ²}) (the encoder), p(z) = N(0, I), p(x|z) = Π_p Bernoulli(x_p; σ(l_p))
# with decoder logits l. Everything is per example and in nats; the training loss is −mean ELBO.

def gaussian_kl(mu, logvar):
    """KL(N(μ, diag e^{log σ²}) ‖ N(0, I)) = ½ Σ_j (σ_j² + μ_j² − 1 − log σ_j²), summed over the
    last axis: (..., L), (..., L) -> (...). Zero iff μ = 0 and log σ² = 0."""
    for name, value in (("mu", mu), ("logvar", logvar)):
        if not hasattr(value, "shape") or value.ndim < 1:
            raise ValueError(f"gaussian_kl: {name} must be an array (..., L), got "
                             f"{getattr(value, 'shape', type(value).__name__)}")
    if mu.shape != logvar.shape:
        raise ValueError(f"gaussian_kl: mu and logvar must have the same shape, got {mu.shape} "
                         f"and {logvar.shape}")
    return 0.5 * jnp.sum(jnp.exp(logvar) + mu ** 2 - 1.0 - logvar, axis=-1)


def bernoulli_log_likelihood(logits, x):
    """log p(x|z) = Σ_p [x_p log σ(l_p) + (1 − x_p) log(1 − σ(l_p))] = Σ_p [x_p·l_p − softplus(l_p)]
    over all axes but the first: logits, x (N, ...) -> (N,). x in [0, 1] (binary for a true
    likelihood)."""
    if not hasattr(logits, "shape") or not hasattr(x, "shape") or logits.shape != x.shape or (
            logits.ndim < 2):
        raise ValueError(f"bernoulli_log_likelihood: logits and x must be batches (N, ...) of "
                         f"the same shape, got {getattr(logits, 'shape', type(logits).__name__)} "
                         f"and {getattr(x, 'shape', type(x).__name__)}")
    per_pixel = x * logits - jax.nn.softplus(logits)
    return jnp.sum(per_pixel.reshape(per_pixel.shape[0], -1), axis=1)


def binarize(key, images):
    """Dynamic binarisation: x_p ~ Bernoulli(images_p) independently, as float (same shape).
    A fresh draw every step makes the grey MNIST digits a binary data set with more variety
    (the setting of Burda et al.'s 'dynamically binarised MNIST')."""
    if not hasattr(images, "shape") or not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"binarize: images must be a float array of grey levels in [0, 1], got "
                        f"{getattr(images, 'dtype', type(images).__name__)}")
    return (jax.random.uniform(key, images.shape) < images).astype(images.dtype)


def _vae_checks(fn, vae, images):
    for attribute in ("encode", "decode"):
        if not callable(getattr(vae, attribute, None)):
            raise TypeError(f"{fn}: vae must have encode and decode methods (models.VAE), got "
                            f"{type(vae).__name__}")
    if not hasattr(images, "shape") or images.ndim < 2:
        raise ValueError(f"{fn}: images must be a batch (N, ...), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")


def elbo(vae, images, key):
    """The evidence lower bound per example, in nats (N,):
        ELBO(x) = E_{q(z|x)}[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≤ log p(x),
    the expectation estimated with one reparameterised z ~ q(z|x), the KL in closed form
    (gaussian_kl). images (N, ...) should be binary (binarize)."""
    _vae_checks("elbo", vae, images)
    from segen_jax.models.vae import reparameterize

    mu, logvar = vae.encode(images)
    logits = vae.decode(reparameterize(key, mu, logvar))
    return bernoulli_log_likelihood(logits, images) - gaussian_kl(mu, logvar)


def _log_normal(z, mu, logvar):
    """log N(z; μ, diag e^{log σ²}) summed over the last axis."""
    return -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + logvar + (z - mu) ** 2 / jnp.exp(logvar), axis=-1)


def iwae_log_weights(vae, images, key, k):
    """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) for z_1 … z_k ~ q(z|x): (k, N)."""
    _vae_checks("iwae_log_weights", vae, images)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"iwae_log_weights: k must be an int >= 1, got {k!r}")
    k = int(k)
    mu, logvar = vae.encode(images)
    n = images.shape[0]
    eps = jax.random.normal(key, (k,) + mu.shape, mu.dtype)
    z = mu + jnp.exp(0.5 * logvar) * eps                               # (k, N, L)
    logits = vae.decode(z.reshape(k * n, -1))
    repeated = jnp.broadcast_to(images, (k,) + images.shape).reshape((k * n,) + images.shape[1:])
    log_px = bernoulli_log_likelihood(logits, repeated).reshape(k, n)
    log_pz = _log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z))
    log_qz = _log_normal(z, mu, logvar)
    return log_px + log_pz - log_qz


def iwae_bound(vae, images, key, k):
    """One draw of the importance-weighted bound (Burda et al. 2016) per example, in nats (N,):
        log (1/k) Σ_{i=1..k} w_i,   w_i = p(x, z_i) / q(z_i|x),  z_i ~ q(z|x),
    computed as logsumexp(log w) − log k so that no w_i is ever exponentiated on its own.
    Its expectation L_k satisfies L_1 = ELBO ≤ L_k ≤ L_{k+1} ≤ log p(x), and L_k → log p(x) as
    k → ∞ when the weights are bounded; −L_k is the NLL estimate reported in nats. The k·N
    decoder passes run as one batch."""
    log_w = iwae_log_weights(vae, images, key, k)
    return jax.nn.logsumexp(log_w, axis=0) - jnp.log(k)

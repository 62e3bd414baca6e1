"""Losses. Segmentation: per-pixel cross-entropy and the soft Dice loss.

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

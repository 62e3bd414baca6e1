"""Metrics. Segmentation: confusion matrix, IoU / mIoU, pixel accuracy, boundary F1 on label
maps. Generation: the Fréchet distance between Gaussians (and between image sets on the
course classifier's features), mode coverage on 2-D toy mixtures, and a VAE's active latent
units (end of this file).

pred, target: integer label maps of the same shape, (H, W) or a batch (N, H, W), values in
[0, num_classes); target may also hold ignore_index (e.g. 255 on PASCAL VOC's object borders),
and those pixels count nowhere. Computed on the host in NumPy (exact integer counts), after the
model's argmax. Any other label outside [0, num_classes) raises ValueError: a silently dropped
class would make every number below wrong.

    confusion[t, p] = #{pixels with target t and prediction p}          (rows = target)
    IoU_c = TP_c / (TP_c + FP_c + FN_c) = C[c, c] / (Σ_p C[c, p] + Σ_t C[t, c] − C[c, c])
    mIoU = mean of IoU_c over the classes present in the target or the prediction
    pixel accuracy = Σ_c C[c, c] / Σ C
    wrong class fraction = 1 − Σ_{c≠bg} C[c, c] / Σ_{t≠bg, p≠bg} C[t, p]
    boundary F1 = 2·P·R / (P + R) of the label map's boundary pixels (see boundary_f1)
"""
import numpy as np
from scipy import ndimage


def _labels(fn, name, value, num_classes, ignore_index):
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{fn}: {name} must hold integer class labels, got dtype {array.dtype}")
    valid = (array >= 0) & (array < num_classes)
    if ignore_index is not None:
        valid |= array == ignore_index
    if not valid.all():
        bad = np.unique(array[~valid])[:5].tolist()
        allowed = f"[0, {num_classes})" + ("" if ignore_index is None else
                                           f" or ignore_index = {ignore_index}")
        raise ValueError(f"{fn}: {name} holds labels {bad} outside {allowed}")
    return array


def _check(fn, pred, target, num_classes, ignore_index):
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"{fn}: num_classes must be an int >= 1, got {num_classes!r}")
    pred = _labels(fn, "pred", pred, num_classes, None)
    target = _labels(fn, "target", target, num_classes, ignore_index)
    if pred.shape != target.shape:
        raise ValueError(f"{fn}: pred and target must have the same shape, got "
                         f"{pred.shape} and {target.shape}")
    return pred, target


def confusion_matrix(pred, target, num_classes, *, ignore_index=None):
    """C (num_classes, num_classes) int64, C[t, p] = #{pixels: target t, prediction p}.

    Rows are the target (true) class, columns the prediction; pixels whose target is
    ignore_index are left out."""
    return _confusion("confusion_matrix", pred, target, num_classes, ignore_index)


def _confusion(fn, pred, target, num_classes, ignore_index):
    pred, target = _check(fn, pred, target, num_classes, ignore_index)
    keep = target != ignore_index if ignore_index is not None else np.ones(target.shape, bool)
    pairs = target[keep].astype(np.int64) * num_classes + pred[keep]
    return np.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(confusion):
    """(mIoU, per-class IoU (K,)) from C: IoU_c = C[c, c] / (row_c + col_c − C[c, c]).

    A class absent from both target and prediction (row and column empty) has no IoU: NaN in
    the per-class array, left out of the mean."""
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    per_class = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    present = ~np.isnan(per_class)
    return (float(per_class[present].mean()) if present.any() else float("nan")), per_class


def mean_iou(pred, target, num_classes, *, ignore_index=None):
    """(mIoU, per-class IoU (num_classes,)); classes absent from target and prediction: NaN,
    excluded from the mean."""
    return iou_from_confusion(_confusion("mean_iou", pred, target, num_classes, ignore_index))


def pixel_accuracy(pred, target, num_classes, *, ignore_index=None):
    """Fraction of (non-ignored) pixels whose prediction equals the target: trace(C) / ΣC
    (NaN when no pixel counts, like mean_iou)."""
    confusion = _confusion("pixel_accuracy", pred, target, num_classes, ignore_index)
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def wrong_class_fraction(pred, target, num_classes, *, background=0, ignore_index=None):
    """Among the pixels that are foreground in both target and prediction (found), the share
    given the wrong foreground class: with F = the classes other than `background`,
        1 − Σ_{c∈F} C[c, c] / Σ_{t∈F, p∈F} C[t, p]
    (NaN when no pixel is found). It separates recognising objects from finding them: a
    segmenter can draw every digit's outline and still name it wrongly."""
    confusion = _confusion("wrong_class_fraction", pred, target, num_classes, ignore_index)
    if not isinstance(background, (int, np.integer)) or not 0 <= background < num_classes:
        raise ValueError(f"wrong_class_fraction: background must be a class in [0, "
                         f"{num_classes}), got {background!r}")
    found = np.delete(np.delete(confusion, background, 0), background, 1)
    total = found.sum()
    return float(1 - np.trace(found) / total) if total else float("nan")


def _label_maps(fn, name, labels):
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or 0 in labels.shape[-2:]:
        raise ValueError(f"{fn}: {name} must be a label map (H, W) or a batch (N, H, W) with "
                         f"H, W >= 1, got shape {labels.shape}")
    return labels


def label_boundaries(labels):
    """Boolean map of the pixels where the label changes: pixel (i, j) is a boundary pixel if
    its right or lower neighbour has another label (both pixels of such a pair are marked).
    (H, W) or (N, H, W); an ignore value is a label like any other here."""
    labels = _label_maps("label_boundaries", "labels", labels)
    edge = np.zeros(labels.shape, bool)
    for axis in (-2, -1):
        a = np.moveaxis(labels, axis, 0)
        change = a[1:] != a[:-1]
        marked = np.moveaxis(edge, axis, 0)        # a view: writing it writes edge
        marked[1:] |= change
        marked[:-1] |= change
    return edge


def boundary_f1(pred, target, num_classes, *, tolerance=2, ignore_index=None):
    """F1 of the predicted label boundaries against the true ones, within `tolerance` pixels.

    B_p, B_t: boundary pixels of pred and target (label_boundaries); d(x, B) the Euclidean
    distance from pixel x to the nearest pixel of B. Over all images together:
        precision P = #{x ∈ B_p : d(x, B_t) ≤ tolerance} / |B_p|
        recall    R = #{x ∈ B_t : d(x, B_p) ≤ tolerance} / |B_t|
        F1 = 2·P·R / (P + R)
    (Csurka et al., BMVC 2013, pooled over images and class-agnostic: it scores where the edges
    are, mIoU scores the classes.) No boundaries in either: 1.0; in only one of them: 0.0.
    With ignore_index, boundary pixels (of either map) that the target ignores are not counted,
    and the ignored region counts as a label of its own when the target's boundaries are found:
    PASCAL VOC separates objects from the background by a void band (255, about 5 pixels
    wide), so its true boundaries are the band's two edges, band width + 1 pixels apart (√2 times
    that at corners); a tolerance of about 1.5·(band width + 1) lets an exact prediction score 1. (H, W) or (N, H, W) label maps.
    """
    _label_maps("boundary_f1", "pred", pred)
    pred, target = _check("boundary_f1", pred, target, num_classes, ignore_index)
    if not (isinstance(tolerance, (int, float, np.integer, np.floating)) and tolerance >= 0):
        raise ValueError(f"boundary_f1: tolerance must be a number of pixels >= 0, got "
                         f"{tolerance!r}")
    pred, target = pred.reshape(-1, *pred.shape[-2:]), target.reshape(-1, *target.shape[-2:])
    hits_p = hits_t = total_p = total_t = 0
    for p, t in zip(pred, target):
        bp, bt = label_boundaries(p), label_boundaries(t)
        if ignore_index is not None:
            bp &= t != ignore_index
            bt &= t != ignore_index
        total_p, total_t = total_p + bp.sum(), total_t + bt.sum()
        if bp.any() and bt.any():
            # distance_transform_edt(~B) is each pixel's distance to the nearest pixel of B
            hits_p += (ndimage.distance_transform_edt(~bt)[bp] <= tolerance).sum()
            hits_t += (ndimage.distance_transform_edt(~bp)[bt] <= tolerance).sum()
    if total_p == 0 and total_t == 0:
        return 1.0
    if total_p == 0 or total_t == 0 or hits_p + hits_t == 0:
        return 0.0
    precision, recall = hits_p / total_p, hits_t / total_t
    return float(2 * precision * recall / (precision + recall))


# ---- generation: Fréchet distance and mode coverage --------------------------------------------

def _matrix(fn, name, value, shape):
    array = np.asarray(value, np.float64)
    if array.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{fn}: {name} holds NaN or inf")
    return array


def _psd_sqrt(fn, name, cov):
    """The symmetric square root of a covariance, by eigendecomposition (negative eigenvalues
    from rounding clipped to 0; ValueError if cov is not symmetric)."""
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9 * max(1.0, np.abs(cov).max())):
        raise ValueError(f"{fn}: {name} must be symmetric (a covariance matrix)")
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, cov1, mu2, cov2):
    """Fréchet (2-Wasserstein²) distance between N(mu1, cov1) and N(mu2, cov2), d dimensions:
        FD = |mu1 − mu2|² + tr(cov1 + cov2 − 2 (cov1^½ cov2 cov1^½)^½).
    tr (cov1 cov2)^½ equals tr (cov1^½ cov2 cov1^½)^½, whose argument is symmetric positive
    semidefinite, so both square roots are taken by eigendecomposition (no complex leftovers,
    unlike scipy.linalg.sqrtm of the non-symmetric cov1·cov2). mu (d,), cov (d, d) -> float >= 0
    (in float64; 0 for identical Gaussians, symmetric in its two arguments)."""
    fn = "frechet_distance"
    mu1 = np.asarray(mu1, np.float64)
    if mu1.ndim != 1:
        raise ValueError(f"{fn}: mu1 must be a vector (d,), got shape {mu1.shape}")
    d = mu1.shape[0]
    mu1 = _matrix(fn, "mu1", mu1, (d,))
    mu2 = _matrix(fn, "mu2", mu2, (d,))
    cov1, cov2 = _matrix(fn, "cov1", cov1, (d, d)), _matrix(fn, "cov2", cov2, (d, d))
    root1 = _psd_sqrt(fn, "cov1", cov1)
    _psd_sqrt(fn, "cov2", cov2)
    middle = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    value = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * cross
    return float(max(value, 0.0))


def gaussian_stats(features):
    """(mean (d,), covariance (d, d)) of features (n, d), n >= 2 (unbiased covariance)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"gaussian_stats: features must have shape (n, d) with n >= 2, got "
                         f"{x.shape}")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def image_feature_stats(images, *, classifier=None, batch_size=500):
    """gaussian_stats (mean (d,), covariance (d, d)) of the penultimate features φ(x) of a digit
    classifier (default: the course's shipped one, d = 128) over images (n, 28, 28, 1),
    n >= 2, computed batch_size images at a time. A set compared many times (the test digits
    of every FD evaluation) needs its statistics only once."""
    return _feature_stats(images, classifier, batch_size, "image_feature_stats", "images")


def _feature_stats(images, classifier, batch_size, fn, arg):
    # image_feature_stats for fn, whose errors name its argument arg
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1) or len(images) < 2:
        raise ValueError(f"{fn}: {arg} must have shape (n, 28, 28, 1) with n >= 2, got "
                         f"{images.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be an int >= 1, got {batch_size!r}")
    if classifier is None:
        from segen_jax import weights
        classifier = weights.load("classifier")
    feats = np.concatenate([np.asarray(classifier.features(images[i:i + batch_size]))
                            for i in range(0, len(images), batch_size)])
    return gaussian_stats(feats)


def image_frechet_distance(images_a, images_b, *, classifier=None, batch_size=500):
    """FD between two sets of 28x28x1 images (n_a, 28, 28, 1) and (n_b, 28, 28, 1) on the
    penultimate features (128) of the course's digit classifier (default: the shipped weights),
    each set summarised by gaussian_stats (image_feature_stats). The FD of two finite samples
    of one distribution is not 0 and grows as the samples shrink: compare against the
    real-vs-real value at the same sample sizes."""
    if classifier is None:
        from segen_jax import weights
        classifier = weights.load("classifier")
    stats_a = _feature_stats(images_a, classifier, batch_size, "image_frechet_distance", "images_a")
    stats_b = _feature_stats(images_b, classifier, batch_size, "image_frechet_distance", "images_b")
    return frechet_distance(*stats_a, *stats_b)


def mode_coverage(samples, centers, sigma):
    """(modes captured, fraction of high-quality samples) of 2-D (or d-D) samples (n, d) from a
    mixture with modes at centers (m, d) and standard deviation sigma: a sample is high
    quality if it lies within 3·sigma of its nearest centre, and a mode is captured if it is
    the nearest centre of at least one high-quality sample (the rule of VEEGAN and PacGAN)."""
    x, c = np.asarray(samples, np.float64), np.asarray(centers, np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(c) == 0:
        raise ValueError(f"mode_coverage: samples (n, d) and centers (m, d) must share d, got "
                         f"{x.shape} and {c.shape}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)):
        raise TypeError(f"mode_coverage: sigma must be a number, got {type(sigma).__name__}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"mode_coverage: sigma must be a finite number > 0, got {sigma!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError("mode_coverage: samples hold NaN or inf (a diverged generator?)")
    if len(x) == 0:
        return 0, 0.0
    distance = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=-1)
    nearest = distance.argmin(1)
    good = distance[np.arange(len(x)), nearest] <= 3 * sigma
    return int(len(np.unique(nearest[good]))), float(good.mean())


def active_units(mu, *, threshold=1e-2):
    """(number of active latent units, per-unit activity (L,)) of a VAE's posterior means
    mu (n, L) over n inputs: unit u is active when A_u = Var_x(E_{q(z|x)}[z_u]) > threshold
    (Burda et al. 2016, with 0.01). An inactive unit's q(z_u|x) does not depend on x: its KL
    term is (near) 0 and the decoder ignores it, which is posterior collapse for that unit."""
    m = np.asarray(mu, np.float64)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"active_units: mu must have shape (n, L) with n >= 2, got {m.shape}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise ValueError(f"active_units: threshold must be a number >= 0, got {threshold!r}")
    activity = m.var(axis=0)
    return int(np.sum(activity > threshold)), activity

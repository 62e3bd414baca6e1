"""Segmentation metrics on label maps: confusion matrix, IoU / mIoU, pixel accuracy, boundary F1.

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

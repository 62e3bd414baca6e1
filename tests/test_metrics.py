"""segen_jax.metrics against plain loop-and-set references written from the definitions."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from segen_jax.metrics import (boundary_f1, confusion_matrix, iou_from_confusion,
                               label_boundaries, mean_iou, pixel_accuracy, wrong_class_fraction)


@st.composite
def label_maps(draw, ignore=False):
    k = draw(st.integers(1, 5))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # blocky maps (labels constant on 1..3-pixel cells) so boundaries are not everywhere
    cell = draw(st.integers(1, 3))
    coarse = lambda: np.kron(rng.integers(0, k, (shape[0], -(-shape[1] // cell),
                                                 -(-shape[2] // cell))),
                             np.ones((1, cell, cell), int))[:, :shape[1], :shape[2]]
    pred, target = coarse(), coarse()
    if ignore:
        target = np.where(rng.random(shape) < 0.2, 255, target)
    return pred, target, k


def reference_confusion(pred, target, k, ignore_index=None):
    c = np.zeros((k, k), int)
    for p, t in zip(pred.ravel(), target.ravel()):
        if t != ignore_index:
            c[t, p] += 1
    return c


@given(label_maps(ignore=True))
def test_confusion_iou_and_accuracy_match_the_definitions(maps):
    pred, target, k = maps
    c = confusion_matrix(pred, target, k, ignore_index=255)
    np.testing.assert_array_equal(c, reference_confusion(pred, target, k, 255))
    keep = target != 255
    ious = []
    for cls in range(k):
        inter = np.sum((pred == cls) & (target == cls) & keep)
        union = np.sum(((pred == cls) | (target == cls)) & keep)
        ious.append(inter / union if union else np.nan)
    miou, per_class = mean_iou(pred, target, k, ignore_index=255)
    np.testing.assert_allclose(per_class, ious, rtol=1e-12)
    if not np.all(np.isnan(ious)):
        assert miou == pytest.approx(np.nanmean(ious))
    accuracy = pixel_accuracy(pred, target, k, ignore_index=255)
    if keep.any():
        assert accuracy == pytest.approx(np.mean(pred[keep] == target[keep]))
    else:
        assert np.isnan(accuracy)


def test_absent_classes_are_left_out_of_the_mean():
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1]])
    miou, per_class = mean_iou(pred, target, 4)
    np.testing.assert_allclose(per_class[:2], [1 / 2, 2 / 3])
    assert np.isnan(per_class[2:]).all()
    assert miou == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert iou_from_confusion(np.eye(3, dtype=int))[0] == 1.0


def reference_boundary_f1(pred, target, tolerance):
    """All-pairs distances between boundary pixels, per image, pooled."""
    hits_p = hits_t = n_p = n_t = 0
    for p, t in zip(pred, target):
        bp, bt = np.argwhere(label_boundaries(p)), np.argwhere(label_boundaries(t))
        n_p, n_t = n_p + len(bp), n_t + len(bt)
        if len(bp) and len(bt):
            d = np.sqrt(((bp[:, None, :] - bt[None, :, :]) ** 2).sum(-1))
            hits_p += np.sum(d.min(1) <= tolerance)
            hits_t += np.sum(d.min(0) <= tolerance)
    if n_p == n_t == 0:
        return 1.0
    if not (n_p and n_t and hits_p + hits_t):
        return 0.0
    precision, recall = hits_p / n_p, hits_t / n_t
    return 2 * precision * recall / (precision + recall)


@given(label_maps(), st.sampled_from([0, 1, 1.5, 2, 3]))
def test_boundary_f1_matches_all_pairs_distances(maps, tolerance):
    pred, target, k = maps
    assert boundary_f1(pred, target, k, tolerance=tolerance) == pytest.approx(
        reference_boundary_f1(pred, target, tolerance))


def test_boundaries_of_a_square_and_f1_under_a_shift():
    target = np.zeros((12, 12), int)
    target[3:7, 3:7] = 1
    edge = label_boundaries(target)
    # the label changes between rows 2|3 and 6|7 and columns 2|3 and 6|7: both sides marked
    assert edge[2, 4] and edge[3, 4] and edge[6, 4] and edge[7, 4] and not edge[4, 4]
    assert boundary_f1(target, target, 2) == 1.0
    shifted = np.roll(target, 1, axis=1)
    assert boundary_f1(shifted, target, 2, tolerance=1) == 1.0
    assert boundary_f1(shifted, target, 2, tolerance=0) < 1.0
    assert boundary_f1(np.zeros_like(target), target, 2) == 0.0
    assert boundary_f1(np.zeros_like(target), np.zeros_like(target), 2) == 1.0


def test_a_void_band_between_object_and_background_is_scored_fairly():
    """VOC-style labels: a square object inside a 1-pixel void (255) ring, whose two edges are
    the true boundaries, 2 pixels apart (2√2 at the corners). Predicting the object exactly (the
    ring as either class) is perfect at a tolerance of 3; predicting nothing finds no boundary."""
    target = np.zeros((16, 16), int)
    target[4:12, 4:12] = 255
    target[5:11, 5:11] = 7
    for ring_as in (0, 7):
        pred = np.where(target == 255, ring_as, target)
        assert boundary_f1(pred, target, 11, tolerance=3, ignore_index=255) == 1.0
        assert boundary_f1(pred, target, 11, tolerance=1, ignore_index=255) < 1.0
    assert boundary_f1(np.zeros_like(target), target, 11, tolerance=3, ignore_index=255) == 0.0
    shifted = np.roll(np.where(target == 255, 0, target), 5, axis=1)
    assert boundary_f1(shifted, target, 11, tolerance=3, ignore_index=255) < 0.8
    # ignored pixels count nowhere in the confusion matrix
    assert confusion_matrix(np.zeros_like(target), target, 11, ignore_index=255).sum() == 16 * 16 - 28


@pytest.mark.parametrize("call, error, message", [
    (lambda: confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3), ValueError,
     r"confusion_matrix: pred holds labels \[3\] outside \[0, 3\)"),
    (lambda: mean_iou(np.array([0, 1]), np.array([-1, 255]), 3, ignore_index=255), ValueError,
     r"mean_iou: target holds labels \[-1\] outside \[0, 3\) or ignore_index = 255"),
    (lambda: pixel_accuracy(np.array([0, 1]), np.array([0, 255]), 3), ValueError,
     r"target holds labels \[255\] outside \[0, 3\)$"),
    (lambda: confusion_matrix(np.array([0.0]), np.array([0]), 3), TypeError,
     r"pred must hold integer class labels, got dtype float64"),
    (lambda: confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 3), ValueError,
     r"pred and target must have the same shape, got \(2, 2\) and \(2, 3\)"),
    (lambda: confusion_matrix(np.zeros(2, int), np.zeros(2, int), 0), ValueError,
     r"num_classes must be an int >= 1, got 0"),
    (lambda: boundary_f1(np.zeros((2, 2), int), np.zeros((2, 2), int), 2, tolerance=-1),
     ValueError, r"boundary_f1: tolerance must be a number of pixels >= 0, got -1"),
    (lambda: boundary_f1(np.zeros(4, int), np.zeros(4, int), 2), ValueError,
     r"boundary_f1: pred must be a label map \(H, W\) or a batch \(N, H, W\) with H, W >= 1, "
     r"got shape \(4,\)"),
    (lambda: label_boundaries(np.zeros((2, 0), int)), ValueError,
     r"label_boundaries: labels must be a label map"),
])
def test_bad_labels_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_wrong_class_fraction_matches_a_direct_count():
    rng = np.random.default_rng(5)
    for _ in range(20):
        target = rng.integers(0, 4, size=(3, 9, 7))
        pred = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, 4, target.shape))
        found = (pred > 0) & (target > 0)
        expected = np.mean(pred[found] != target[found])
        assert np.isclose(wrong_class_fraction(pred, target, 4), expected)
        # another background class: found = neither is class 2
        found2 = (pred != 2) & (target != 2)
        assert np.isclose(wrong_class_fraction(pred, target, 4, background=2),
                          np.mean(pred[found2] != target[found2]))
    assert np.isnan(wrong_class_fraction(np.zeros((2, 2), int), np.ones((2, 2), int), 2))
    with pytest.raises(ValueError, match="background must be a class in"):
        wrong_class_fraction(np.zeros((2, 2), int), np.zeros((2, 2), int), 2, background=2)

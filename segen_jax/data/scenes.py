"""Segmentation data generated deterministically from a seed.

`digit_scenes` places real MNIST digits on a canvas with a per-pixel class map (0 =
background, 1..10 = digit 0..9); `shapes_scenes` draws circles, squares and triangles on a
striped background (0 = background, 1 = circle, 2 = square, 3 = triangle). Scene i depends
only on (seed, i) and the other arguments, so the first m scenes of n are the m scenes.
"""
import functools
import numbers

import numpy as np
from scipy import ndimage

from segen_jax.data.mnist import SPLITS, load_mnist

DIGIT_SCENE_CLASSES = ("background",) + tuple(str(d) for d in range(10))
SHAPE_CLASSES = ("background", "circle", "square", "triangle")

_DIGIT = 28          # side of an MNIST digit in pixels
_RESTARTS = 20       # overlap=False: full re-placements of one image before giving up


# ----------------------------------------------------------------------------- checks
def _int(fn, name, value, minimum, why=""):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}{why}, got {value}")
    return int(value)


def _pair(fn, name, value, kind):
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value)
    if not ok:
        what = "ints" if kind is numbers.Integral else "numbers"
        raise TypeError(f"{fn}: {name} must be a pair (lo, hi) of {what}, got {value!r}")
    return value[0], value[1]


def _real(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a number, got {type(value).__name__} {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _scaled(scale: float) -> int:
    """Side in pixels of a 28-pixel digit resized by `scale` (rounded half up, at least 1)."""
    return max(1, int(np.floor(_DIGIT * scale + 0.5)))


def _rngs(seed, n):
    """One independent generator per scene, from (seed, scene index)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


# ----------------------------------------------------------------------------- resizing
@functools.lru_cache(maxsize=256)
def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights, half-pixel centres (identity when n_in == n_out)."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    m.flags.writeable = False
    return m


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a 2-D array (H, W) -> (height, width), float32; values stay in
    the input's range (every output is a convex combination of input pixels)."""
    image = np.asarray(image, np.float32)
    if image.ndim != 2:
        raise ValueError(f"resize_bilinear: image must be 2-D (H, W), got shape {image.shape}")
    h = _int("resize_bilinear", "height", height, 1)
    w = _int("resize_bilinear", "width", width, 1)
    return _interp_matrix(image.shape[0], h) @ image @ _interp_matrix(image.shape[1], w).T


# ----------------------------------------------------------------------------- digits
def _check_digit_args(n, size, digits_per_image, scale, noise, overlap, split, seed):
    fn = "digit_scenes"
    n = _int(fn, "n", n, 0)
    lo, hi = _pair(fn, "digits_per_image", digits_per_image, numbers.Integral)
    if not 1 <= lo <= hi:
        raise ValueError(f"{fn}: digits_per_image must be (lo, hi) with 1 <= lo <= hi, "
                         f"got {tuple(digits_per_image)!r}")
    s_lo, s_hi = _pair(fn, "scale", scale, numbers.Real)
    if not (np.isfinite(s_lo) and np.isfinite(s_hi) and 0 < s_lo <= s_hi):
        raise ValueError(f"{fn}: scale must be (lo, hi) with 0 < lo <= hi, got {tuple(scale)!r}")
    biggest = _scaled(s_hi)
    size = _int(fn, "size", size, biggest, f" (a 28-pixel digit at scale {s_hi:g})")
    noise = _real(fn, "noise", noise)
    if not isinstance(overlap, (bool, np.bool_)):
        raise TypeError(f"{fn}: overlap must be a bool, got {type(overlap).__name__} {overlap!r}")
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"{fn}: split must be one of {SPLITS}, got {split!r}")
    seed = _int(fn, "seed", seed, 0)
    smallest = _scaled(s_lo)
    if not overlap and hi * smallest ** 2 > size ** 2:
        raise ValueError(f"{fn}: with overlap=False, {hi} digits of at least {smallest}x{smallest}"
                         f" pixels (scale {s_lo:g}) cannot fit on a {size}x{size} canvas; use a "
                         "larger size, a smaller scale, fewer digits_per_image or overlap=True")
    return n, size, (int(lo), int(hi)), (float(s_lo), float(s_hi)), noise, bool(overlap), seed


def _free_corner(rng, size, side, boxes):
    """A random top-left corner for a side x side box inside the canvas that intersects none
    of `boxes` ((y, x, side) triples), or None if there is no such corner."""
    y, x = np.mgrid[0:size - side + 1, 0:size - side + 1]
    free = np.ones(y.shape, bool)
    for by, bx, bs in boxes:
        free &= (y + side <= by) | (by + bs <= y) | (x + side <= bx) | (bx + bs <= x)
    options = np.flatnonzero(free)
    if options.size == 0:
        return None
    pick = options[rng.integers(options.size)]
    return int(y.flat[pick]), int(x.flat[pick])


def _grid_corners(rng, size, sides):
    """Top-left corners on a jittered g x g grid, g = ceil(sqrt(k)) for k digits: each digit
    gets its own cell of size // g pixels (cells drawn at random) and a random offset inside
    it, so the boxes are disjoint whenever every side fits a cell. None if one does not."""
    g = int(np.ceil(np.sqrt(len(sides))))
    cell = size // g
    if max(sides) > cell:
        return None
    cells = rng.permutation(g * g)[:len(sides)]
    return [(int(c // g * cell + rng.integers(cell - s + 1)),
             int(c % g * cell + rng.integers(cell - s + 1))) for c, s in zip(cells, sides)]


def _place(rng, size, sides, overlap, index):
    """Top-left corners for boxes of the given sides. overlap=False: up to _RESTARTS greedy
    placements at uniformly random free corners, then a jittered grid (_grid_corners); the
    greedy tries alone fail for about 1 scene in 6,000 with 3 digits of up to 31 pixels on
    64x64, and the grid only runs where they fail, so the other scenes stay as they were."""
    if overlap:
        return [(int(rng.integers(size - s + 1)), int(rng.integers(size - s + 1))) for s in sides]
    for _ in range(_RESTARTS):
        boxes = []
        for s in sides:
            corner = _free_corner(rng, size, s, boxes)
            if corner is None:
                break
            boxes.append((*corner, s))
        else:
            return [(y, x) for y, x, _ in boxes]
    corners = _grid_corners(rng, size, sides)
    if corners is not None:
        return corners
    raise ValueError(f"digit_scenes: overlap=False could not place {len(sides)} digits of sides "
                     f"{sides} without overlap on a {size}x{size} canvas (scene {index}, "
                     f"{_RESTARTS} tries and a {int(np.ceil(np.sqrt(len(sides))))}-wide grid); "
                     "use a larger size, a smaller scale, fewer digits_per_image or overlap=True")


def _disk(radius):
    """Boolean (2r + 1, 2r + 1) disk: the offsets (dy, dx) with dy² + dx² <= r²."""
    d = np.arange(-radius, radius + 1)
    return d[:, None] ** 2 + d[None, :] ** 2 <= radius ** 2


def digit_scenes(n, *, size=64, digits_per_image=(1, 3), scale=(0.8, 1.6), noise=0.05,
                 overlap=True, label_dilation=0, split="train", seed=0):
    """n scenes of real MNIST digits (from `load_mnist(split)`) for segmentation.

    Each size x size canvas gets k ~ uniform{lo..hi} digits (digits_per_image=(lo, hi)), each
    resized bilinearly by a factor ~ uniform(scale) to round(28 * factor) pixels and placed
    fully inside at a random position; intensities combine with max. A pixel is labelled
    with a digit where that digit's resized intensity > 0.5, later digits overwriting earlier
    ones. label_dilation=r >= 0 widens each digit's label by r pixels (binary dilation with a
    disk of radius r, inside the digit's square box): a thin stroke is hard to hit exactly at
    a coarse output stride, and a wider label asks the segmenter to find the digit rather than
    trace each stroke; the image is unchanged. overlap=False keeps the digits' square boxes
    disjoint. Finally Gaussian noise of std `noise` is added and the image clipped to [0, 1].

    Returns (images float32 (n, size, size, 1) in [0, 1], labels int32 (n, size, size)) with
    label 0 = background and d + 1 for digit d (names in DIGIT_SCENE_CLASSES). The same
    arguments give identical arrays.
    """
    n, size, (lo, hi), (s_lo, s_hi), noise, overlap, seed = _check_digit_args(
        n, size, digits_per_image, scale, noise, overlap, split, seed)
    label_dilation = _int("digit_scenes", "label_dilation", label_dilation, 0)
    disk = _disk(label_dilation) if label_dilation else None
    images = np.zeros((n, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int32)
    if n == 0:
        return images[..., None], labels
    digits, classes = load_mnist(split)
    digits = digits[..., 0]
    for i, rng in enumerate(_rngs(seed, n)):
        k = int(rng.integers(lo, hi + 1))
        which = rng.integers(len(digits), size=k)
        sides = [_scaled(f) for f in rng.uniform(s_lo, s_hi, size=k)]
        for j, s, (y, x) in zip(which, sides, _place(rng, size, sides, overlap, i)):
            patch = digits[j] if s == _DIGIT else resize_bilinear(digits[j], s, s)
            window = images[i, y:y + s, x:x + s]
            np.maximum(window, patch, out=window)
            stroke = patch > 0.5
            if disk is not None:
                stroke = ndimage.binary_dilation(stroke, structure=disk)
            labels[i, y:y + s, x:x + s][stroke] = classes[j] + 1
        if noise > 0:
            images[i] += rng.normal(0.0, noise, (size, size)).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images[..., None], labels


def load_digit_scenes(n_train=2000, n_test=500, **kwargs):
    """Train and test digit scenes: `digit_scenes(n_train, split="train", seed=2*seed, ...)`
    and `digit_scenes(n_test, split="test", seed=2*seed + 1, ...)`, so test scenes hold only
    test digits. kwargs: the keyword arguments of `digit_scenes` except split.

    Returns ((x_train, y_train), (x_test, y_test)) as `digit_scenes` returns them.
    """
    fn = "load_digit_scenes"
    if "split" in kwargs:
        raise TypeError(f"{fn}: split is chosen per part and cannot be passed, got "
                        f"split={kwargs['split']!r}")
    n_train = _int(fn, "n_train", n_train, 0)
    n_test = _int(fn, "n_test", n_test, 0)
    seed = _int(fn, "seed", kwargs.pop("seed", 0), 0)
    _int(fn, "label_dilation", kwargs.get("label_dilation", 0), 0)
    scene_kwargs = {k: v for k, v in kwargs.items() if k != "label_dilation"}
    for split in SPLITS:  # check every argument before generating anything
        _check_digit_args(0, **{"size": 64, "digits_per_image": (1, 3), "scale": (0.8, 1.6),
                                "noise": 0.05, "overlap": True, **scene_kwargs},
                          split=split, seed=seed)
    train = digit_scenes(n_train, split="train", seed=2 * seed, **kwargs)
    test = digit_scenes(n_test, split="test", seed=2 * seed + 1, **kwargs)
    return train, test


# ----------------------------------------------------------------------------- shapes
def shapes_scenes(n, *, size=32, max_shapes=2, noise=0.05, seed=0):
    """n RGB scenes of 1..max_shapes filled shapes on a striped background.

    Background: sinusoidal stripes of random orientation, frequency and phase in a random
    dull colour. Each shape (class uniform over circle, square, triangle) has a random bright
    colour, a random rotation (squares and triangles) and a circumscribed radius
    R ~ uniform(0.12, 0.3) * size (at least 2 pixels), centred so that it lies fully inside:
    a circle of radius R, a square of half-diagonal R, an equilateral triangle inscribed in
    the circle of radius R. Later shapes cover earlier ones. Gaussian noise of std `noise` is
    added and the image clipped to [0, 1].

    Returns (images float32 (n, size, size, 3) in [0, 1], labels int32 (n, size, size)) with
    0 = background, 1 = circle, 2 = square, 3 = triangle (names in SHAPE_CLASSES).
    """
    fn = "shapes_scenes"
    n = _int(fn, "n", n, 0)
    size = _int(fn, "size", size, 8)
    max_shapes = _int(fn, "max_shapes", max_shapes, 1)
    noise = _real(fn, "noise", noise)
    seed = _int(fn, "seed", seed, 0)
    images = np.zeros((n, size, size, 3), np.float32)
    labels = np.zeros((n, size, size), np.int32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r_lo = max(2.0, 0.12 * size)
    r_hi = max(r_lo, 0.3 * size)
    for i, rng in enumerate(_rngs(seed, n)):
        theta, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(1 / 8, 1 / 3)  # cycles per pixel
        stripes = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
        dull = rng.uniform(0.1, 0.4, 3).astype(np.float32)
        images[i] = dull * (1 + 0.3 * stripes)[..., None]
        for _ in range(int(rng.integers(1, max_shapes + 1))):
            cls = int(rng.integers(1, 4))
            r = rng.uniform(r_lo, r_hi)
            cy, cx = rng.uniform(r, size - 1 - r, 2)
            angle = rng.uniform(0, 2 * np.pi)
            dy, dx = yy - cy, xx - cx
            if cls == 1:
                mask = dy * dy + dx * dx <= r * r
            elif cls == 2:  # rotated square: |u|, |v| <= half side = r / sqrt(2)
                u = dx * np.cos(angle) + dy * np.sin(angle)
                v = -dx * np.sin(angle) + dy * np.cos(angle)
                mask = np.maximum(np.abs(u), np.abs(v)) <= r / np.sqrt(2)
            else:  # equilateral triangle: inside the 3 edges at distance r/2 from the centre
                normals = angle + np.pi / 3 + 2 * np.pi / 3 * np.arange(3)
                mask = np.all([dx * np.cos(a) + dy * np.sin(a) <= r / 2 for a in normals], axis=0)
            bright = rng.uniform(0.2, 1.0, 3).astype(np.float32)
            bright[rng.integers(3)] = 1.0
            images[i][mask] = bright
            labels[i][mask] = cls
        if noise > 0:
            images[i] += rng.normal(0.0, noise, (size, size, 3)).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images, labels

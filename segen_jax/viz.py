"""Plotting helpers for the notebooks: image grids, segmentation overlays, training curves.

Every function takes numpy or JAX arrays, draws with matplotlib's object API inside
`style()` (so the global rcParams are left as they were), and returns the Figure.
Bad input raises ValueError before anything is drawn.
"""
import collections.abc
import math
import numbers

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

# One look for every figure of the course: small, legible at 100 % zoom, small PNGs.
STYLE = {
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 11,
    "grid.alpha": 0.35,
    "lines.linewidth": 1.5,
    "lines.markersize": 3.5,
    "image.interpolation": "nearest",
}


def style():
    """Context manager applying `STYLE` to the rcParams, restored on exit: `with style(): ...`."""
    return matplotlib.rc_context(STYLE)


# --------------------------------------------------------------------------- image grids


def image_grid(images, *, labels=None, ncols=None, title=None, cmap="gray", vmin=None,
               vmax=None, colorbar=False, label_prefix=""):
    """A grid of small images without ticks, row by row.

    images: (N, H, W), (N, H, W, 1) or (N, H, W, 3); RGB is shown as is (floats in [0, 1]),
        single-channel with `cmap` on one scale shared by all images: [vmin, vmax], each
        defaulting to the min / max over all images.
    labels: N captions (ints or strings), each written as f"{label_prefix}{label}".
    ncols: images per row, default min(N, 10); the grid has ceil(N / ncols) rows and the
        unused cells of the last row are hidden.
    colorbar: one colour bar shared by all images (single-channel only), e.g. learned
        weights with cmap="RdBu_r" and vmin=-vmax.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise ValueError("image_grid: images must have shape (N, H, W), (N, H, W, 1) or "
                         f"(N, H, W, 3), got shape {tuple(np.shape(images))}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("image_grid: images must hold at least one image, got shape "
                         f"{images.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"image_grid: labels must be a sequence of N={n} captions, one per "
                             f"image, got shape {labels.shape}")
        labels = labels.tolist()
    if ncols is None:
        ncols = min(n, 10)
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"image_grid: ncols must be a positive int, got {ncols!r}")
    rgb = images.ndim == 4
    if colorbar and rgb:
        raise ValueError("image_grid: colorbar=True needs single-channel images (N, H, W) or "
                         f"(N, H, W, 1), got shape {images.shape}")
    if rgb:
        if np.issubdtype(images.dtype, np.floating):
            images = np.clip(images, 0.0, 1.0)
        vmin = vmax = None
    else:
        images = images.astype(np.float32)
        vmin = float(np.nanmin(images)) if vmin is None else float(vmin)
        vmax = float(np.nanmax(images)) if vmax is None else float(vmax)

    ncols = min(int(ncols), n)
    nrows = math.ceil(n / ncols)
    cell = min(1.1, 9.0 / ncols)
    width = ncols * cell + (0.7 if colorbar else 0.0)
    height = nrows * (cell + (0.2 if labels is not None else 0.0)) + (0.35 if title else 0.0)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                                 layout="constrained")
        im = None
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.set_visible(False)
                continue
            im = ax.imshow(images[i], cmap=None if rgb else cmap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if labels is not None:
                ax.set_title(f"{label_prefix}{labels[i]}", fontsize=8, pad=2)
        if colorbar:
            fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.9, aspect=25)
        if title:
            fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- segmentation

# Distinct qualitative colours, none grey, black or white (they vanish on grey images):
# after Sasha Trubetskoy's "20 simple, distinct colors", most distinct first.
_PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#ffe119", "#f58231", "#911eb4", "#42d4f4",
            "#f032e6", "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8",
            "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075", "#ff7f50"]


def label_colors(num_classes):
    """The (num_classes, 3) RGB palette in [0, 1] of `segmentation_overlay`.

    Class 0 (background) is black; classes 1..20 take 20 distinct fixed colours (enough for
    PASCAL VOC's 21 classes), further classes hues spread by the golden ratio.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) \
            or num_classes < 1:
        raise ValueError(f"label_colors: num_classes must be a positive int, got {num_classes!r}")
    base = [(0.0, 0.0, 0.0)] + [matplotlib.colors.to_rgb(c) for c in _PALETTE]
    extra = [matplotlib.colors.hsv_to_rgb(((0.618034 * k) % 1.0, 0.75, 0.9))
             for k in range(max(0, num_classes - len(base)))]
    return np.asarray((base + extra)[:num_classes], dtype=np.float64)


def segmentation_overlay(image, labels, *, class_names, alpha=0.5, title=None, ax=None,
                         colors=None):
    """An image with its label map laid over it, and a legend of the classes present.

    image: (H, W), (H, W, 1) or (H, W, 3) with values in [0, 1] (grey or RGB).
    labels: int (H, W) with values in 0..K-1; class 0 (background) is left transparent,
        class k > 0 is painted colors[k] with opacity `alpha`.
    class_names: K names, at least max(labels) + 1; the legend names each class present in
        `labels` (background as an empty box).
    colors: (K, 3) RGB in [0, 1], default `label_colors(len(class_names))`.
    ax: axes to draw into; default a new figure. Returns the figure.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError("segmentation_overlay: image must have shape (H, W), (H, W, 1) or "
                         f"(H, W, 3), got shape {tuple(np.shape(image))}")
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"segmentation_overlay: labels must have shape (H, W) = "
                         f"{image.shape[:2]} to match image, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"segmentation_overlay: labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"segmentation_overlay: labels must be >= 0, got min {labels.min()}")
    class_names = list(class_names)
    top = int(labels.max()) if labels.size else 0
    if len(class_names) < top + 1:
        raise ValueError(f"segmentation_overlay: class_names must have at least max(labels) + 1 "
                         f"= {top + 1} names, got {len(class_names)}")
    if colors is None:
        colors = label_colors(len(class_names))
    colors = np.asarray(colors, dtype=np.float64)
    if colors.ndim != 2 or colors.shape[1] != 3 or colors.shape[0] < top + 1:
        raise ValueError(f"segmentation_overlay: colors must have shape (K, 3) with K >= "
                         f"{top + 1}, got shape {colors.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"segmentation_overlay: alpha must be in [0, 1], got {alpha!r}")

    overlay = np.zeros(labels.shape + (4,))
    overlay[..., :3] = colors[labels]
    overlay[..., 3] = np.where(labels > 0, alpha, 0.0)
    present = np.unique(labels).tolist()
    handles = [Patch(facecolor="none", edgecolor="0.4", label=class_names[k]) if k == 0 else
               Patch(facecolor=colors[k], edgecolor="0.4", label=class_names[k])
               for k in present]
    with style():
        if ax is None:
            h, w = labels.shape
            _, ax = plt.subplots(figsize=(3.0 * min(w / h, 2.0) + 1.3, 3.0), layout="constrained")
        if image.ndim == 2:
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        else:
            ax.imshow(np.clip(image, 0.0, 1.0))
        ax.imshow(overlay)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, handlelength=1.2)
        if title:
            ax.set_title(title)
    return ax.figure


# --------------------------------------------------------------------------- training curves

_SPLIT_PREFIXES = ("train_", "test_", "val_")


def _is_number(value):
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    try:
        arr = np.asarray(value)
    except Exception:  # not array-like at all
        return False
    return arr.ndim == 0 and np.issubdtype(arr.dtype, np.number) and arr.dtype != bool


def _group_keys(keys):
    """Groups keys by the name after a train_/test_/val_ prefix; a bare `name` joins its group
    when a prefixed `train_name` etc. is among the keys. Returns [(name, [keys])], in order."""
    suffix = {k: k[len(p):] for k in keys for p in _SPLIT_PREFIXES if k.startswith(p) and k != p}
    groups = {}
    for key in keys:
        groups.setdefault(suffix.get(key, key), []).append(key)
    return list(groups.items())


def training_curves(history, keys=None, *, x="step", title=None, logy=False):
    """One subplot per metric of a training history, 3 to a row.

    history: list of dicts, e.g. [{"step": 0, "loss": 2.3}, {"step": 10, "test_loss": 1.9}];
        a metric is plotted against `x` over the rows that have both.
    keys: metric names (a str or a list), default every numeric key but `x`. Keys that differ
        only by a "train_", "test_" or "val_" prefix share a subplot with a legend, as does a
        bare "loss" with "test_loss"; the subplot's y label is the shared name.
    logy: logarithmic y axes.
    """
    if isinstance(history, dict) or not hasattr(history, "__len__"):
        raise ValueError(f"training_curves: history must be a list of dicts, got "
                         f"{type(history).__name__}")
    if len(history) == 0:
        raise ValueError("training_curves: history must have at least one row, got an empty "
                         "history")
    rows = list(history)
    for i, row in enumerate(rows):
        if not isinstance(row, collections.abc.Mapping):
            raise ValueError(f"training_curves: history must be a list of dicts, got row {i} of "
                             f"type {type(row).__name__}")
    if not any(x in row for row in rows):
        raise ValueError(f"training_curves: x={x!r} is not a key of any row of history, "
                         f"keys present: {sorted({k for row in rows for k in row})}")
    present = list(dict.fromkeys(k for row in rows for k in row))
    if keys is None:
        keys = [k for k in present if k != x and any(_is_number(r[k]) for r in rows if k in r)]
        if not keys:
            raise ValueError(f"training_curves: history has no numeric key besides x={x!r}, "
                             f"keys present: {present}")
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            raise ValueError("training_curves: keys must name at least one metric, got []")
        for key in keys:
            if key not in present:
                raise ValueError(f"training_curves: key {key!r} is not in any row of history, "
                                 f"keys present: {present}")
    series = {}
    for key in keys:
        pts = [(r[x], r[key]) for r in rows if key in r and x in r]
        bad = [v for pair in pts for v in pair if not _is_number(v)]
        if bad:
            raise ValueError(f"training_curves: values of {key!r} and {x!r} must be numbers, "
                             f"got {bad[0]!r}")
        series[key] = np.asarray(pts, dtype=np.float64).reshape(-1, 2)

    groups = _group_keys(keys)
    ncols = min(len(groups), 3)
    nrows = math.ceil(len(groups) / ncols)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows + 0.3),
                                 squeeze=False, layout="constrained")
        for ax, (name, members) in zip(axes.flat, groups):
            for key in members:
                xs, ys = series[key].T
                ax.plot(xs, ys, marker="o" if len(xs) <= 25 else None, label=key)
            ax.set_xlabel(x)
            ax.set_ylabel(name)
            ax.set_title(name if len(members) > 1 else members[0])
            ax.grid(True)
            ax.spines[["top", "right"]].set_visible(False)
            if logy:
                ax.set_yscale("log")
            if len(members) > 1:
                ax.legend()
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        if title:
            fig.suptitle(title)
    return fig

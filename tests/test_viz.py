import matplotlib

matplotlib.use("Agg")

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from segen_jax import viz  # noqa: E402


@pytest.fixture
def figs():
    """Collects figures made in a test and closes them afterwards."""
    made = []
    yield made.append
    for fig in made:
        plt.close(fig)


def _images(ax):
    return [a for a in ax.get_images()]


# --------------------------------------------------------------------------- image_grid

def test_image_grid_layout_captions_and_hidden_cells(figs):
    images = np.random.default_rng(0).random((7, 8, 8, 1))
    fig = viz.image_grid(images, labels=[3, 1, 4, 1, 5, 9, 2], ncols=3, label_prefix="y=",
                         title="digits")
    figs(fig)
    assert len(fig.axes) == 9  # ceil(7 / 3) * 3
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 7
    assert all(not ax.get_visible() for ax in fig.axes[7:])
    assert [ax.get_title() for ax in visible] == ["y=3", "y=1", "y=4", "y=1", "y=5", "y=9", "y=2"]
    assert all(len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0 for ax in visible)
    np.testing.assert_allclose(_images(visible[4])[0].get_array(), images[4, ..., 0])
    assert fig.get_suptitle() == "digits"


def test_image_grid_shared_scale_and_colorbar(figs):
    w = jnp.linspace(-2.0, 1.0, 4 * 5 * 5).reshape(4, 5, 5)
    fig = viz.image_grid(w, cmap="RdBu_r", vmin=-2, vmax=2, colorbar=True, ncols=4)
    figs(fig)
    grid = [ax for ax in fig.axes if _images(ax)]
    assert len(grid) == 4
    assert len(fig.axes) == 5  # four images and the colour bar
    for ax in grid:
        im = _images(ax)[0]
        assert im.get_clim() == (-2.0, 2.0)
        assert im.get_cmap().name == "RdBu_r"
    fig2 = viz.image_grid(w)  # default: one scale over all images, no colour bar
    figs(fig2)
    assert len(fig2.axes) == 4
    assert {_images(ax)[0].get_clim() for ax in fig2.axes} == {(-2.0, 1.0)}


def test_image_grid_rgb_and_string_labels(figs):
    images = np.random.default_rng(1).random((2, 6, 6, 3))
    fig = viz.image_grid(images, labels=["pred 3 / true 5", "pred 1 / true 1"])
    figs(fig)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "pred 3 / true 5"
    assert _images(fig.axes[1])[0].get_array().shape == (6, 6, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=np.zeros((28, 28))), r"images must have shape .*got shape \(28, 28\)"),
    (dict(images=np.zeros((2, 5, 5, 2))), r"images must have shape .*got shape \(2, 5, 5, 2\)"),
    (dict(images=np.zeros((0, 5, 5))), "images must hold at least one"),
    (dict(images=np.zeros((3, 5, 5)), labels=[1, 2]), "labels must be .*N=3"),
    (dict(images=np.zeros((3, 5, 5)), ncols=0), "ncols must be a positive int, got 0"),
    (dict(images=np.zeros((3, 5, 5, 3)), colorbar=True), "colorbar=True needs single-channel"),
])
def test_image_grid_bad_input(kwargs, match):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="image_grid: " + match):
        viz.image_grid(kwargs.pop("images"), **kwargs)
    assert plt.get_fignums() == before  # raised before any figure was made


# --------------------------------------------------------------------------- segmentation

def _scene():
    image = np.zeros((10, 12))
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[1:4, 1:4] = 2
    labels[6:9, 5:9] = 5
    return image, labels


NAMES = ["background", "one", "two", "three", "four", "five", "six"]


def test_label_colors_fixed_distinct_palette():
    pal = viz.label_colors(21)
    assert pal.shape == (21, 3)
    np.testing.assert_array_equal(pal[0], [0, 0, 0])
    assert len({tuple(c) for c in pal}) == 21
    assert ((pal >= 0) & (pal <= 1)).all()
    np.testing.assert_array_equal(viz.label_colors(5), pal[:5])  # a prefix: stable per class
    assert len({tuple(c) for c in viz.label_colors(40)}) == 40
    with pytest.raises(ValueError, match="label_colors: num_classes must be a positive int"):
        viz.label_colors(0)


def test_segmentation_overlay_legend_lists_present_classes(figs):
    image, labels = _scene()
    fig = viz.segmentation_overlay(image, jnp.asarray(labels), class_names=NAMES, title="gt")
    figs(fig)
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["background", "two", "five"]
    pal = viz.label_colors(len(NAMES))
    patches = legend.get_patches()
    np.testing.assert_allclose(patches[1].get_facecolor()[:3], pal[2])
    np.testing.assert_allclose(patches[2].get_facecolor()[:3], pal[5])
    assert ax.get_title() == "gt"
    overlay = _images(ax)[-1].get_array()
    assert overlay.shape == (10, 12, 4)
    np.testing.assert_allclose(overlay[..., 3], np.where(labels > 0, 0.5, 0.0))  # 0 transparent
    np.testing.assert_allclose(overlay[2, 2, :3], pal[2])


def test_segmentation_overlay_into_given_axes_rgb_and_colors(figs):
    fig, (a, b) = plt.subplots(1, 2)
    figs(fig)
    image, labels = _scene()
    labels[labels == 2] = 0
    colors = np.tile([[0.1, 0.2, 0.3]], (6, 1))
    out = viz.segmentation_overlay(np.stack([image] * 3, -1), labels, class_names=NAMES[:6],
                                   ax=b, colors=colors, alpha=0.8)
    assert out is fig
    assert a.get_legend() is None
    assert [t.get_text() for t in b.get_legend().get_texts()] == ["background", "five"]
    np.testing.assert_allclose(_images(b)[-1].get_array()[7, 6], [0.1, 0.2, 0.3, 0.8])


_HW = np.zeros((10, 12))


@pytest.mark.parametrize("image, labels, names, match", [
    (np.zeros((10, 12, 2)), _HW.astype(int), NAMES, r"image must have shape .*\(10, 12, 2\)"),
    (_HW, np.zeros((12, 10), int), NAMES,
     r"labels must have shape \(H, W\) = \(10, 12\).*got shape \(12, 10\)"),
    (_HW, _HW, NAMES, "labels must be integers"),
    (_HW, np.full((10, 12), -1), NAMES, "labels must be >= 0"),
    (_HW, np.full((10, 12), 6), NAMES[:4], "class_names must have at least max.*= 7 names, got 4"),
])
def test_segmentation_overlay_bad_input(image, labels, names, match):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="segmentation_overlay: " + match):
        viz.segmentation_overlay(image, labels, class_names=names)
    assert plt.get_fignums() == before


def test_segmentation_overlay_bad_colors():
    image, labels = _scene()
    with pytest.raises(ValueError, match=r"colors must have shape \(K, 3\) with K >= 6"):
        viz.segmentation_overlay(image, labels, class_names=NAMES, colors=np.zeros((4, 3)))


# --------------------------------------------------------------------------- training curves

HISTORY = [
    {"step": 0, "train_loss": 2.3, "accuracy": 0.1, "test_loss": 2.4, "test_accuracy": 0.12},
    {"step": 10, "train_loss": 1.2, "accuracy": 0.6, "lr": 1e-3},
    {"step": 20, "train_loss": 0.7, "accuracy": 0.8, "lr": 5e-4, "note": "warm"},
    {"step": 30, "train_loss": 0.5, "test_loss": 0.9, "test_accuracy": 0.7, "lr": 2.5e-4},
]


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_training_curves_groups_and_data(figs):
    fig = viz.training_curves(HISTORY, title="run")
    figs(fig)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3  # loss (train+test), accuracy (+test), lr; "note" is not numeric
    loss, acc, lr = visible
    assert [ax.get_ylabel() for ax in visible] == ["loss", "accuracy", "lr"]
    assert all(ax.get_xlabel() == "step" for ax in visible)
    lines = _lines(loss)
    assert set(lines) == {"train_loss", "test_loss"}
    np.testing.assert_array_equal(lines["train_loss"].get_xdata(), [0, 10, 20, 30])
    np.testing.assert_array_equal(lines["train_loss"].get_ydata(), [2.3, 1.2, 0.7, 0.5])
    np.testing.assert_array_equal(lines["test_loss"].get_xdata(), [0, 30])
    np.testing.assert_array_equal(lines["test_loss"].get_ydata(), [2.4, 0.9])
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train_loss", "test_loss"]
    assert set(_lines(acc)) == {"accuracy", "test_accuracy"}
    assert lr.get_legend() is None
    np.testing.assert_array_equal(_lines(lr)["lr"].get_xdata(), [10, 20, 30])
    assert fig.get_suptitle() == "run"


def test_training_curves_layout_wraps_after_three(figs):
    history = [{"epoch": e, **{f"m{i}": float(e * i + 1) for i in range(4)}} for e in range(3)]
    fig = viz.training_curves(history, x="epoch", logy=True)
    figs(fig)
    assert len(fig.axes) == 6  # 2 rows of 3, the last two hidden
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in visible] == ["m0", "m1", "m2", "m3"]
    assert all(ax.get_yscale() == "log" and ax.get_xlabel() == "epoch" for ax in visible)
    assert visible[0].get_subplotspec().rowspan.start == 0
    assert visible[3].get_subplotspec().rowspan.start == 1


def test_training_curves_selected_keys_accepts_jax_scalars(figs):
    history = [{"step": jnp.int32(s), "loss": jnp.float32(1.0 / (s + 1))} for s in range(3)]
    fig = viz.training_curves(history, "loss")
    figs(fig)
    assert len(fig.axes) == 1
    np.testing.assert_allclose(_lines(fig.axes[0])["loss"].get_ydata(), [1.0, 0.5, 1 / 3],
                               rtol=1e-6)


@pytest.mark.parametrize("history, kwargs, match", [
    ([], {}, "history must have at least one row"),
    ({"step": 0}, {}, "history must be a list of dicts, got dict"),
    ([{"step": 0}, 3], {}, "history must be a list of dicts, got row 1 of type int"),
    (HISTORY, dict(keys=["train_loss", "val_loss"]), "key 'val_loss' is not in any row"),
    (HISTORY, dict(x="epoch"), "x='epoch' is not a key of any row"),
    (HISTORY, dict(keys="note"), "values of 'note' and 'step' must be numbers"),
    ([{"step": 0, "note": "a"}], {}, "history has no numeric key besides x='step'"),
])
def test_training_curves_bad_input(history, kwargs, match):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="training_curves: " + match):
        viz.training_curves(history, **kwargs)
    assert plt.get_fignums() == before


# --------------------------------------------------------------------------- style

def test_style_applies_and_does_not_leak(figs):
    before = dict(matplotlib.rcParams)
    with viz.style():
        assert matplotlib.rcParams["font.size"] == viz.STYLE["font.size"]
    figs(viz.image_grid(np.zeros((2, 4, 4)), labels=[0, 1]))
    figs(viz.training_curves(HISTORY))
    assert dict(matplotlib.rcParams) == before
    fig = viz.training_curves(HISTORY)
    figs(fig)
    assert fig.dpi == viz.STYLE["figure.dpi"]
    width, height = fig.get_size_inches()
    assert width * fig.dpi <= 1000 and height * fig.dpi <= 800  # small PNGs

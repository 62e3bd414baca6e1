"""PASCAL VOC 2012 and Oxford-IIIT Pet loaders, on tiny files written here in the real layouts."""
import numpy as np
import pytest
from PIL import Image

from segen_jax.data import PET_CLASSES, VOC_CLASSES, load_pets, load_voc


def write_jpeg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.astype(np.uint8), "RGB").save(path, quality=95)


def write_palette_png(path, indices):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(indices.astype(np.uint8), "P")
    palette = np.random.default_rng(0).integers(0, 256, (256, 3)).astype(np.uint8)
    image.putpalette(palette.ravel().tolist())
    image.save(path)


@pytest.fixture
def voc(tmp_path):
    """VOCdevkit/VOC2012 with 3 train and 1 val image, 8x12 labels: class 15 (person) on the
    left half, a void (255) border column, class 0 on the right."""
    root = tmp_path / "VOCdevkit" / "VOC2012"
    ids = ["2007_000032", "2007_000039", "2008_000001", "2009_000005"]
    labels = np.zeros((8, 12), np.uint8)
    labels[:, :5] = 15
    labels[:, 5] = 255
    for k, name in enumerate(ids):
        write_jpeg(root / "JPEGImages" / f"{name}.jpg", np.full((8, 12, 3), 40 * k + 20))
        write_palette_png(root / "SegmentationClass" / f"{name}.png", labels)
    split_dir = root / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True)
    (split_dir / "train.txt").write_text("\n".join(ids[:3]) + "\n")
    (split_dir / "val.txt").write_text(ids[3] + "\n")
    return tmp_path, root, labels


def test_voc_reads_images_and_palette_indices(voc):
    top, root, labels = voc
    images, got = load_voc(top, "train", size=(8, 12))
    assert images.shape == (3, 8, 12, 3) and images.dtype == np.float32
    assert got.shape == (3, 8, 12) and got.dtype == np.int32
    np.testing.assert_array_equal(got[1], labels)           # indices, not palette colours
    np.testing.assert_allclose(images[:, 0, 0, 0], np.array([20, 60, 100]) / 255, atol=3 / 255)
    assert VOC_CLASSES[15] == "person" and len(VOC_CLASSES) == 21
    # the VOC2012 folder itself, or its parent, work as root too; val has its own list
    assert load_voc(root, "val", size=(8, 12))[0].shape[0] == 1
    assert load_voc(top / "VOCdevkit", "train", size=(8, 12), max_images=2)[1].shape[0] == 2


def test_voc_resizes_labels_by_nearest_neighbour(voc):
    top, _, _ = voc
    _, labels = load_voc(top, "train", size=(16, 24))
    assert set(np.unique(labels)) == {0, 15, 255}           # no interpolated, invented classes
    np.testing.assert_array_equal(labels[0, :, :10], 15)


def test_pets_maps_the_trimap_to_background_pet_ignore(tmp_path):
    trimap = np.full((6, 6), 2, np.uint8)
    trimap[1:5, 1:5] = 3
    trimap[2:4, 2:4] = 1
    for name in ("Abyssinian_1", "beagle_7"):
        write_jpeg(tmp_path / "images" / f"{name}.jpg", np.full((6, 6, 3), 128))
        (tmp_path / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
        Image.fromarray(trimap, "L").save(tmp_path / "annotations" / "trimaps" / f"{name}.png")
    (tmp_path / "annotations" / "trainval.txt").write_text("Abyssinian_1 1 1 1\nbeagle_7 13 2 6\n")
    images, labels = load_pets(tmp_path, "trainval", size=(6, 6))
    assert images.shape == (2, 6, 6, 3) and labels.shape == (2, 6, 6)
    want = np.where(trimap == 1, 1, np.where(trimap == 2, 0, 255))
    np.testing.assert_array_equal(labels[0], want)
    assert PET_CLASSES == ("background", "pet")


def test_missing_and_corrupt_files_name_the_path(voc, tmp_path):
    top, root, _ = voc
    with pytest.raises(FileNotFoundError, match=r"load_voc: no PASCAL VOC 2012 folder at .*nowhere"):
        load_voc(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"val\.txt' does not exist|trainval\.txt' does not exist"):
        load_voc(top, "trainval")
    (root / "JPEGImages" / "2007_000039.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"2007_000039\.jpg' is not a readable image; expected a "
                                         r"JPEG photograph"):
        load_voc(top, "train")
    (root / "JPEGImages" / "2007_000039.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2007_000039\.jpg' does not exist"):
        load_voc(top, "train")
    with pytest.raises(FileNotFoundError, match=r"load_pets: no Oxford-IIIT Pet folder"):
        load_pets(tmp_path / "nowhere")


def test_bad_label_files_and_arguments(voc):
    top, root, _ = voc
    Image.fromarray(np.zeros((8, 12, 3), np.uint8), "RGB").save(
        root / "SegmentationClass" / "2007_000032.png")
    with pytest.raises(ValueError, match=r"has mode 'RGB'; expected a palette PNG of VOC class "
                                         r"indices"):
        load_voc(top, "train")
    write_palette_png(root / "SegmentationClass" / "2007_000032.png", np.full((8, 12), 40))
    with pytest.raises(ValueError, match=r"SegmentationClass holds labels \[40\]; expected 0\.\.20 "
                                         r"or 255"):
        load_voc(top, "train")
    with pytest.raises(ValueError, match=r"load_voc: split must be 'train', 'val' or 'trainval'"):
        load_voc(top, "test")
    with pytest.raises(ValueError, match=r"load_voc: size must be a pair \(H, W\) of ints >= 1"):
        load_voc(top, size=256)
    with pytest.raises(ValueError, match=r"load_voc: max_images must be None or an int >= 1, got 0"):
        load_voc(top, max_images=0)

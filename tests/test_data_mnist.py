"""MNIST: the shipped digits, and the IDX reader on small files the tests write."""
import gzip
import subprocess
import sys

import numpy as np
import pytest

from segen_jax.data import load_mnist, read_idx


def test_shipped_digits_shapes_ranges_and_balance():
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    assert x_train.shape == (4000, 28, 28, 1) and x_train.dtype == np.float32
    assert x_test.shape == (1000, 28, 28, 1)
    assert y_train.dtype == np.int32 and y_test.dtype == np.int32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 100))
    # The source file is sorted by label: a prefix of our split must still hold every class.
    assert len(np.unique(y_train[:200])) == 10


def test_train_and_test_share_no_digit():
    x_train, _ = load_mnist("train")
    x_test, _ = load_mnist("test")
    train = {img.tobytes() for img in (x_train * 255).astype(np.uint8)}
    assert not any(img.tobytes() in train for img in (x_test * 255).astype(np.uint8))


def test_returned_arrays_are_fresh_copies():
    x, _ = load_mnist("train")
    x[0] = 7.0
    assert load_mnist("train")[0][0].max() == 1.0


def test_digits_look_like_digits():
    # Mean images differ by class the way digits do: a 1 has less ink than an 8 or a 0.
    x, y = load_mnist("train")
    ink = np.array([x[y == d].mean() for d in range(10)])
    assert ink[1] < ink[0] and ink[1] < ink[8]
    assert 0.08 < x.mean() < 0.2


def test_loading_needs_no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert load_mnist("train")[0].shape == (4000, 28, 28, 1)


def test_issue_command_with_network_off():
    code = ("import socket\n"
            "def refuse(*a, **k): raise OSError('network is off')\n"
            "socket.socket.connect = refuse; socket.create_connection = refuse\n"
            "from segen_jax import data; print(data.load_mnist('train')[0].shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(4000, 28, 28, 1)"


def write_idx(path, array, *, compress=False):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_idx_folder(folder, *, n_train=6, n_test=4, compress=False):
    rng = np.random.default_rng(0)
    data = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        data[split] = images, labels
    return data


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_round_trip(tmp_path, compress):
    data = make_idx_folder(tmp_path, compress=compress)
    for split in ("train", "test"):
        x, y = load_mnist(split, path=tmp_path)
        images, labels = data[split]
        assert x.shape == (len(images), 28, 28, 1) and x.dtype == np.float32
        np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(y, labels)


def test_idx_in_mnist_subfolder_and_from_segen_data(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    data = make_idx_folder(tmp_path / "mnist", n_test=3)
    monkeypatch.setenv("SEGEN_DATA", str(tmp_path))
    x, y = load_mnist("test")
    assert x.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(y, data["test"][1])


def test_bad_split():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'val'"):
        load_mnist("val")


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="path .*nowhere.* does not exist"):
        load_mnist("train", path=tmp_path / "nowhere")


def test_path_that_is_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="path .*file.txt.* is not a directory"):
        load_mnist("train", path=tmp_path / "file.txt")


def test_missing_idx_file_names_it(tmp_path):
    make_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte"):
        load_mnist("test", path=tmp_path)


def test_truncated_idx_file_names_path_and_sizes(tmp_path):
    make_idx_folder(tmp_path)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.* is truncated: shape \(6, 28, 28\) "
                                         r"needs 4720 bytes, the file has 4620"):
        load_mnist("train", path=tmp_path)


def test_truncated_header_and_bad_magic(tmp_path):
    f = tmp_path / "short"
    f.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="short.* is truncated: its header needs 16 bytes"):
        read_idx(f)
    f.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="is not an IDX file: expected the magic bytes"):
        read_idx(f)


def test_damaged_gzip(tmp_path):
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(b"\x00" * 1000)[:20])
    with pytest.raises(ValueError, match="x.gz.* is a damaged gzip file"):
        read_idx(f)


def test_labels_count_must_match_images(tmp_path):
    make_idx_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte holds \(5,\) labels, expected \(6,\)"):
        load_mnist("train", path=tmp_path)


def test_sample_photo_is_a_real_photograph():
    from segen_jax.data import sample_photo

    gray, rgb = sample_photo(), sample_photo(gray=False)
    assert gray.shape == (600, 512) and gray.dtype == np.float32
    assert rgb.shape == (600, 512, 3)
    assert 0.0 <= gray.min() < 0.1 and 0.9 < gray.max() <= 1.0
    # A photograph has smooth regions: neighbouring pixels correlate strongly, unlike noise.
    assert np.corrcoef(gray[:, 1:].ravel(), gray[:, :-1].ravel())[0, 1] > 0.9

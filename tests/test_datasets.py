"""Dataset loaders on small files written in each real format, the search order and its error, the decoded
cache, the checkpoint key, and the real datasets of ../shared/datasets when present."""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from data_files import (images, write_cifar_batches, write_idx_dataset, write_image_folder, write_npz)
from qannealq.data import DatasetNotFoundError, checkpoint_path, load_dataset
from qannealq.data import formats as formats_module
from qannealq.data.sources import SPECS, data_dirs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
IDX = SPECS["mnist"].raw_files
CLASSES = ["cat", "airplane", "bird"]  # written unsorted: labels follow the sorted names


def _check(data, n_train, n_test, inputs, classes):
    assert data.x_train.shape == (n_train, inputs) and data.x_test.shape == (n_test, inputs)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.num_classes == classes
    for y in (data.y_train, data.y_test):
        assert 0 <= y.min() and y.max() < classes


def test_npz_scales_pixels_and_shifts_emnist_letters_labels(tmp_path):
    x, xt = images(30, (28, 28)), images(10, (28, 28), seed=1)
    y = np.arange(30) % 26 + 1  # EMNIST letters are published as 1..26
    write_npz(tmp_path / "emnist-letters.npz", x, y, xt, np.arange(10) + 1)
    data = load_dataset("emnist-letters", data_dir=tmp_path, cache=tmp_path / "cache")
    _check(data, 30, 10, 784, 26)
    np.testing.assert_array_equal(data.y_train, y - 1)
    np.testing.assert_array_equal(data.x_train[3], x[3].reshape(-1).astype(np.float32) / 255.0)
    assert data.source.startswith("npz at") and len(data.checksum) == 64


@pytest.mark.parametrize("size", [4.0, True, 3, "4"])
def test_digits_input_size_must_be_an_integer_dividing_8(size):
    """4.0 and True equal 4 and 1, so they passed the check (and ModelConfig's) and failed in numpy's reshape
    with "'float' object cannot be interpreted as an integer", naming neither the option nor what to give."""
    with pytest.raises(ValueError, match=r"input_size=.* must divide 8: use 8, 4, 2 or 1"):
        load_dataset("digits", input_size=size)


def test_digits_input_size_takes_a_numpy_integer():
    assert load_dataset("digits", input_size=np.int64(4)).name == "digits4x4"


def test_npz_pixels_as_floats_or_wide_integers_are_scaled_to_the_same_inputs(tmp_path):
    """Every npz was divided by 255: floats already in [0, 1] became inputs in [0, 1/255] and uint16 pixels inputs
    up to 257, silently. Floats in [0, 1] are taken as they are, pixels 0..255 of any dtype divided by 255, and
    anything else (standardised inputs, 16-bit pixels) refused by name."""
    from qannealq.errors import InvalidArgumentError

    x, xt, y = images(12, (28, 28)), images(4, (28, 28), seed=1), np.arange(12) % 10
    write_npz(tmp_path / "u8" / "mnist.npz", x, y, xt, y[:4])
    standard = load_dataset("mnist", data_dir=tmp_path / "u8", cache=tmp_path / "cache")
    for name, (a, b) in {"f32": (x.astype(np.float32) / 255, xt.astype(np.float32) / 255),
                         "f64": (x / 255.0, xt / 255.0), "i64": (x.astype(np.int64), xt.astype(np.int64)),
                         "f255": (x.astype(np.float32), xt.astype(np.float32))}.items():
        write_npz(tmp_path / name / "mnist.npz", a, y, b, y[:4])
        data = load_dataset("mnist", data_dir=tmp_path / name, cache=tmp_path / "cache")
        np.testing.assert_allclose(data.x_train, standard.x_train, rtol=0, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(data.x_test, standard.x_test, rtol=0, atol=1e-7, err_msg=name)
        assert data.x_train.dtype == np.float32
    for name, (a, b) in {"u16": (x.astype(np.uint16) * 257, xt.astype(np.uint16) * 257),
                         "std": ((x - 33.3) / 78.0, (xt - 33.3) / 78.0)}.items():
        write_npz(tmp_path / name / "mnist.npz", a, y, b, y[:4])
        with pytest.raises(InvalidArgumentError, match=r"images of dtype .* give pixels 0\.\.255"):
            load_dataset("mnist", data_dir=tmp_path / name, cache=tmp_path / "cache")


def test_npz_of_binarised_boolean_images_is_read_as_0_and_1(tmp_path):
    """A binarised MNIST saved as booleans was refused as "images of dtype bool/bool with values 0..1; give ...
    floats in [0, 1]", values it held; True is a white pixel, as 255 of uint8 and 1.0 of floats are."""
    x, xt, y = images(12, (28, 28)) > 127, images(4, (28, 28), seed=1) > 127, np.arange(12) % 10
    write_npz(tmp_path / "b" / "mnist.npz", x, y, xt, y[:4])
    data = load_dataset("mnist", data_dir=tmp_path / "b", cache=tmp_path / "cache")
    np.testing.assert_array_equal(data.x_train, x.reshape(12, -1).astype(np.float32))
    np.testing.assert_array_equal(data.x_test, xt.reshape(4, -1).astype(np.float32))


def test_labels_outside_the_published_range_are_refused(tmp_path):
    write_npz(tmp_path / "mnist.npz", images(4, (28, 28)), np.array([0, 1, 2, 10]), images(2, (28, 28)),
              np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels span 0..10, expected 0..9"):
        load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")


@pytest.mark.parametrize("y_train, shape", [(np.eye(10, dtype=np.uint8)[np.arange(20) % 10], r"\(20, 10\)"),
                                            (np.arange(19) % 10, r"\(19,\)")])
def test_npz_labels_not_one_per_image_are_refused(tmp_path, y_train, shape):
    """One-hot labels (20, 10) were raveled into 200 labels of 0 and 1 beside 20 images: the dataset loaded, a
    network trained on the wrong labels, and accuracy failed in numpy ("operands could not be broadcast")."""
    from qannealq.errors import InvalidArgumentError

    write_npz(tmp_path / "mnist.npz", images(20, (28, 28)), y_train, images(2, (28, 28)), np.array([[0], [1]]))
    with pytest.raises(InvalidArgumentError, match=rf"y_train has shape {shape} for the 20 images of x_train; give "
                                                   "one integer label per image"):
        load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")


def test_image_folder_decodes_rgb_channel_first_with_sorted_class_labels(tmp_path):
    rgb = images(6, (4, 5, 3))
    write_image_folder(tmp_path / "cifar10", {"train": [(CLASSES[k % 3], rgb[k]) for k in range(6)],
                                              "test": [(c, rgb[k]) for k, c in enumerate(CLASSES)]})
    data = load_dataset("cifar10", data_dir=tmp_path, cache=tmp_path / "cache")
    _check(data, 6, 3, 60, 10)
    assert data.classes == ("airplane", "bird", "cat")
    # class folders in sorted order; within a class, files in name order
    assert data.y_train.tolist() == [0, 0, 1, 1, 2, 2]
    first_airplane = rgb[1]  # k=1 is the first image written to airplane/
    np.testing.assert_array_equal(data.x_train[0], first_airplane.transpose(2, 0, 1).reshape(-1) / np.float32(255))


def test_an_image_folder_whose_test_split_has_a_class_train_lacks_is_refused(tmp_path):
    """CIFAR-10 with train/truck missing (a copy cut short) loaded: truck's 1000 test images were left out, the
    9000 others scored by a 10-output network trained on 9 classes, silently."""
    from qannealq.errors import InvalidArgumentError

    rgb = images(6, (4, 5, 3))
    write_image_folder(tmp_path / "cifar10", {"train": [(CLASSES[k % 2], rgb[k]) for k in range(6)],
                                              "test": [(c, rgb[k]) for k, c in enumerate(CLASSES)]})
    (tmp_path / "cifar10" / "test" / "empty").mkdir()  # a folder of no images leaves nothing out
    with pytest.raises(InvalidArgumentError, match=r"test has class folders bird that .*train lacks"):
        load_dataset("cifar10", data_dir=tmp_path, cache=tmp_path / "cache")


def test_emnist_letters_as_an_image_folder(tmp_path):
    """An image folder's labels count from 0 (its sorted class folders A..Z): EMNIST letters' published offset
    of 1 was subtracted from them too, and the folder refused as 'train labels span 0..25, expected 1..26'."""
    x, xt = images(26, (28, 28)), images(3, (28, 28), seed=1)
    write_image_folder(tmp_path / "emnist-letters", {"train": [(chr(65 + k), x[k]) for k in range(26)],
                                                     "test": [(chr(65 + k), xt[i]) for i, k in enumerate((2, 0, 25))]})
    data = load_dataset("emnist-letters", data_dir=tmp_path, cache=tmp_path / "cache")
    _check(data, 26, 3, 784, 26)
    assert data.y_train.tolist() == list(range(26)) and data.classes[0] == "A"
    assert sorted(data.y_test.tolist()) == [0, 2, 25]


def test_idx_files_and_emnist_transpose(tmp_path):
    x, xt = images(12, (28, 28)), images(5, (28, 28), seed=2)
    y, yt = np.arange(12) % 10, np.arange(5)
    write_idx_dataset(tmp_path / "mnist", IDX, x, y, xt, yt)
    mnist = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    _check(mnist, 12, 5, 784, 10)
    np.testing.assert_array_equal(mnist.x_train, x.reshape(12, -1) / np.float32(255))
    assert mnist.source.startswith("idx at")

    spec = SPECS["emnist-letters"]
    write_idx_dataset(tmp_path / "emnist", tuple(f.removesuffix(".gz") for f in spec.raw_files), x, y + 1, xt,
                      yt + 1, transpose=True)  # stored transposed and uncompressed
    letters = load_dataset("emnist-letters", data_dir=tmp_path, cache=tmp_path / "cache")
    np.testing.assert_array_equal(letters.x_train, x.reshape(12, -1) / np.float32(255))  # upright again
    np.testing.assert_array_equal(letters.y_test, yt)


def test_cifar_batches_equal_the_same_images_as_an_image_folder(tmp_path):
    train, test = images(10, (32, 32, 3)), images(4, (32, 32, 3), seed=3)
    y, yt = np.arange(10) % 10, np.array([3, 1, 4, 1])
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_cifar_batches(tmp_path / "a" / "cifar-10-batches-py", train, y, test, yt, names)
    batches = load_dataset("cifar10", data_dir=tmp_path / "a", cache=tmp_path / "cache")
    _check(batches, 10, 4, 3072, 10)
    assert batches.classes == tuple(names) and batches.y_test.tolist() == [3, 1, 4, 1]
    write_image_folder(tmp_path / "b" / "cifar10", {"train": [(names[c], train[k]) for k, c in enumerate(y)],
                                                    "test": [(names[c], test[k]) for k, c in enumerate(yt)]})
    folder = load_dataset("cifar10", data_dir=tmp_path / "b", cache=tmp_path / "cache")
    order = np.argsort(y, kind="stable")  # the folder lists images class by class
    np.testing.assert_array_equal(folder.x_train, batches.x_train[order])


def test_a_keras_style_cifar10_npz_is_flattened_channel_first_like_the_batches(tmp_path):
    """Keras's ``cifar10.load_data()`` gives ``(N, 32, 32, 3)`` images and ``(N, 1)`` labels: saved as
    ``cifar10.npz`` they were flattened R, G, B, R, ... where the batches give whole planes, so the same images
    made other input vectors (a model from one source read the other's inputs scrambled)."""
    train, test = images(10, (32, 32, 3)), images(4, (32, 32, 3), seed=3)
    y, yt = np.arange(10) % 10, np.array([3, 1, 4, 1])
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_cifar_batches(tmp_path / "a" / "cifar-10-batches-py", train, y, test, yt, names)
    batches = load_dataset("cifar10", data_dir=tmp_path / "a", cache=tmp_path / "cache")
    write_npz(tmp_path / "k" / "cifar10.npz", train, y[:, None].astype(np.uint8), test, yt[:, None].astype(np.uint8))
    keras = load_dataset("cifar10", data_dir=tmp_path / "k", cache=tmp_path / "cache")
    assert keras.source.startswith("npz at")
    np.testing.assert_array_equal(keras.x_train, batches.x_train)
    np.testing.assert_array_equal(keras.x_test, batches.x_test)
    np.testing.assert_array_equal(keras.y_train, y)
    write_npz(tmp_path / "c" / "cifar10.npz", train.transpose(0, 3, 1, 2), y, test.transpose(0, 3, 1, 2), yt)
    np.testing.assert_array_equal(load_dataset("cifar10", data_dir=tmp_path / "c", cache=tmp_path / "cache").x_train,
                                  batches.x_train)  # an npz already channel-first is kept so


def test_idx_compression_is_told_by_the_contents_not_the_name(tmp_path):
    """A browser that unpacks a ``.gz`` download keeps its name: the plain IDX file named ``.gz`` raised
    ``BadGzipFile: Not a gzipped file``; a gzipped one without ``.gz`` read as a bad magic."""
    x, y = images(6, (28, 28)), np.arange(6)
    names = (IDX[0], IDX[1].removesuffix(".gz"), IDX[2], IDX[3])
    paths = write_idx_dataset(tmp_path / "mnist", names, x, y, x[:2], y[:2])
    paths[0].write_bytes(gzip.decompress(paths[0].read_bytes()))  # plain, named .gz
    paths[1].write_bytes(gzip.compress(paths[1].read_bytes()))  # gzipped, named plain
    data = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    np.testing.assert_array_equal(data.x_train, x.reshape(6, -1) / np.float32(255))
    np.testing.assert_array_equal(data.y_train, y)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _flip_crc(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # gzip's CRC-32 of the contents
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt, damage", [("idx", _truncate), ("idx", _flip_crc), ("cifar", _truncate),
                                         ("folder", _truncate)])
def test_a_damaged_raw_file_is_named_with_how_to_replace_it(tmp_path, fmt, damage):
    """A truncated gzip, a bad CRC, a truncated pickled batch or a truncated image raised
    gzip's, pickle's or Pillow's own error (EOFError, BadGzipFile, UnpicklingError, a bare OSError), most
    naming no file, as a traceback from the command."""
    from qannealq.errors import InvalidArgumentError

    rgb = images(10, (32, 32, 3))
    if fmt == "idx":
        name, bad = "mnist", write_idx_dataset(tmp_path / "mnist", IDX, rgb[..., 0], np.arange(10), rgb[:2, ..., 0],
                                               np.arange(2))[0]
    elif fmt == "cifar":
        folder = write_cifar_batches(tmp_path / "cifar-10-batches-py", rgb, np.arange(10), rgb[:2], [0, 1],
                                     [str(k) for k in range(10)])
        name, bad = "cifar10", folder / "data_batch_3"
    else:
        write_image_folder(tmp_path / "cifar10", {"train": [("a", im) for im in rgb], "test": [("a", rgb[0])]},
                           suffix=".jpg")
        name, bad = "cifar10", tmp_path / "cifar10" / "train" / "a" / "0003.jpg"
    damage(bad)
    with pytest.raises(InvalidArgumentError, match="fresh copy") as err:
        load_dataset(name, data_dir=tmp_path, cache=tmp_path / "cache")
    assert str(bad) in str(err.value)
    assert not (tmp_path / "cache" / "datasets").is_dir() or not list((tmp_path / "cache" / "datasets").glob("*.npz"))


@pytest.mark.parametrize("listed", [64, 16])
def test_a_data_file_differing_from_its_folders_sha256sums_is_refused(tmp_path, listed):
    """A modified mnist.npz beside a SHA256SUMS listing the original (as ../shared/datasets ships one) was loaded
    silently, its changed labels trained on; the list's digests (full, or their first 16 hex digits) are checked."""
    import hashlib

    from qannealq.data.download import ChecksumError

    x = images(20, (28, 28))
    path = write_npz(tmp_path / "mnist.npz", x, np.arange(20) % 10, x[:5], np.arange(5))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  fashion-mnist.npz\n{digest[:listed]}  mnist.npz\n")
    assert load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache").y_train[1] == 1
    write_npz(path, x, np.arange(20) % 10, x[:5], np.arange(5) % 3)  # test labels changed
    with pytest.raises(ChecksumError, match="SHA256SUMS lists for it: the file was modified") as err:
        load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    assert str(path) in str(err.value) and path.is_file()


def test_missing_dataset_error_names_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("QANNEALQ_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", cache=tmp_path / "cache")
    text = str(err.value)
    data, down = tmp_path / "data", tmp_path / "cache" / "downloads" / "fashion-mnist"
    for place in (data / "fashion-mnist.npz", data / "fashion-mnist", data / "FashionMNIST" / "raw",
                  down / "fashion-mnist.npz", down):
        assert str(place) in text
    assert "qannealq datasets --download fashion-mnist" in text and "--data-dir" in text
    assert isinstance(err.value, FileNotFoundError)


def test_a_qannealq_data_that_is_not_a_folder_is_named(tmp_path, monkeypatch, capsys):
    """``$QANNEALQ_DATA`` set to a typo or to a file (``.../mnist.npz``) read as "not found (9 places searched)",
    as ``--data-dir``'s typo did before it was checked; the error and the listing now say the variable is wrong."""
    from qannealq.cli import main

    write_npz(tmp_path / "mnist.npz", images(4, (28, 28)), np.arange(4), images(2, (28, 28)), np.arange(2))
    monkeypatch.setenv("QANNEALQ_DATA", str(tmp_path / "mnist.npz"))
    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    note = f"$QANNEALQ_DATA={str(tmp_path / 'mnist.npz')!r} is not a folder"
    with pytest.raises(DatasetNotFoundError, match=re.escape(note)):
        load_dataset("mnist")
    assert main(["datasets", "mnist"]) == 2 and note in capsys.readouterr().out
    monkeypatch.setenv("QANNEALQ_DATA", str(tmp_path))  # a folder: nothing said about the variable
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist")
    assert "QANNEALQ_DATA=" not in str(err.value)


def test_search_order_and_default_folders(tmp_path, monkeypatch):
    x = images(4, (28, 28))
    write_idx_dataset(tmp_path / "mnist", IDX, x, np.arange(4), x, np.arange(4))
    write_npz(tmp_path / "mnist.npz", x, np.arange(4), x[:2], np.arange(2))
    assert load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "c").source.startswith("npz")  # npz first
    monkeypatch.delenv("QANNEALQ_DATA", raising=False)
    assert Path("..") / "shared" / "datasets" in data_dirs()
    monkeypatch.setenv("QANNEALQ_DATA", str(tmp_path))
    assert data_dirs() == [tmp_path] and data_dirs(tmp_path / "x") == [tmp_path / "x"]


def test_decoded_arrays_are_cached_by_source_checksum(tmp_path, monkeypatch):
    x = images(6, (28, 28))
    paths = write_idx_dataset(tmp_path / "mnist", IDX, x, np.arange(6), x[:2], np.arange(2))
    first = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "datasets").glob("mnist-*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("decoded again although the cache holds these files")

    monkeypatch.setattr(formats_module, "read_idx_pair", fail)
    again = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert again.checksum == first.checksum
    monkeypatch.undo()
    write_idx_dataset(tmp_path / "mnist", IDX, x[::-1].copy(), np.arange(6), x[:2], np.arange(2))  # new data
    changed = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    assert changed.checksum != first.checksum
    np.testing.assert_array_equal(changed.x_train, first.x_train[::-1])
    assert len(paths) == 4


@pytest.mark.parametrize("cut", ["half", "empty", "crc"])
def test_a_damaged_decoded_cache_is_decoded_again(tmp_path, caplog, cut):
    """A decoded-array cache cut short (a crash, a full disk, a copy) raised zipfile's BadZipFile or EOFError on
    every load until the file was deleted by hand; it is a warning and the files are decoded again."""
    x = images(6, (28, 28))
    write_idx_dataset(tmp_path / "mnist", IDX, x, np.arange(6), x[:2], np.arange(2))
    first = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    [cached] = (tmp_path / "cache" / "datasets").glob("mnist-*.npz")
    good = cached.read_bytes()
    at = good.index(x.tobytes()[:16])  # inside x_train's stored bytes: the zip's CRC-32 sees the change
    cached.write_bytes({"half": good[:len(good) // 2], "empty": b"",
                        "crc": good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:]}[cut])
    again = load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert "unreadable" in caplog.text and cached.read_bytes() == good  # rebuilt


def test_an_unwritable_cache_is_a_clear_error_naming_qannealq_cache(tmp_path, monkeypatch):
    """The decoded-array cache goes through the project's atomic write: a failed write names the file and
    QANNEALQ_CACHE, and leaves no temporary file."""
    import qannealq.store
    from qannealq.errors import StoreError

    x = images(6, (28, 28))
    write_idx_dataset(tmp_path / "mnist", IDX, x, np.arange(6), x[:2], np.arange(2))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(qannealq.store.os, "replace", full_disk)
    with pytest.raises(StoreError, match="No space left on device; free disk space or set QANNEALQ_CACHE"):
        load_dataset("mnist", data_dir=tmp_path, cache=tmp_path / "cache")
    assert list((tmp_path / "cache" / "datasets").iterdir()) == []


def test_image_folder_checksum_follows_the_contents_not_the_file_times(tmp_path):
    """A copy or remount of the same images (new modification times) keeps the checksum, hence the decoded
    arrays and the trained model; changing one image changes it."""
    rgb = images(4, (4, 5, 3))
    write_image_folder(tmp_path / "cifar10", {"train": [(CLASSES[k % 2], rgb[k]) for k in range(4)],
                                              "test": [(CLASSES[0], rgb[0])]})
    cache = tmp_path / "cache"
    first = load_dataset("cifar10", data_dir=tmp_path, cache=cache)
    assert (cache / "datasets" / "folder-checksums.json").is_file()
    for path in (tmp_path / "cifar10").rglob("*.png"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    touched = load_dataset("cifar10", data_dir=tmp_path, cache=cache)
    assert touched.checksum == first.checksum
    assert len(json.loads((cache / "datasets" / "folder-checksums.json").read_text())) == 2  # two quick keys
    (cache / "datasets" / "folder-checksums.json").write_text("not json")  # an unreadable index: hashed again
    assert load_dataset("cifar10", data_dir=tmp_path, cache=cache).checksum == first.checksum
    write_image_folder(tmp_path / "cifar10", {"test": [(CLASSES[0], rgb[1])]})  # one image changed
    changed = load_dataset("cifar10", data_dir=tmp_path, cache=cache)
    assert changed.checksum != first.checksum
    np.testing.assert_array_equal(changed.x_test[0], rgb[1].transpose(2, 0, 1).reshape(-1) / np.float32(255))


def test_checkpoint_key_covers_data_architecture_seed_and_epochs(tmp_path):
    x = images(4, (28, 28))
    write_npz(tmp_path / "mnist.npz", x, np.arange(4), x, np.arange(4))
    data = load_dataset("mnist", data_dir=tmp_path)
    base = checkpoint_path(data, (784, 8, 10), 2, 1e-3, 128, 0)
    assert base == checkpoint_path(data, (784, 8, 10), 2, 1e-3, 128, 0)
    others = {checkpoint_path(replace(data, checksum="0" * 64), (784, 8, 10), 2, 1e-3, 128, 0),
              checkpoint_path(data, (784, 16, 10), 2, 1e-3, 128, 0),
              checkpoint_path(data, (784, 8, 10), 3, 1e-3, 128, 0),
              checkpoint_path(data, (784, 8, 10), 2, 1e-3, 128, 1),
              checkpoint_path(data, (784, 8, 10), 2, 1e-3, 128, 0, 2),
              checkpoint_path(data, (784, 8, 10), 2, 1e-2, 128, 0),
              checkpoint_path(data, (784, 8, 10), 2, 1e-3, 64, 0)}
    assert base not in others and len(others) == 7


def test_numpy_numbers_key_the_model_as_their_python_values():
    """``prepare(epochs=np.int64(2))`` and ``hidden=(np.int64(8),)`` pass the settings' checks but raised
    ``TypeError: Object of type int64 is not JSON serializable`` from the cache key."""
    from qannealq.experiment import prepare

    data = load_dataset("digits")
    key = (data, (64, 8, 10), 2, 1e-3, 128, 0)
    numpy_key = (data, tuple(np.int64(s) for s in (64, 8, 10)), np.int64(2), np.float64(1e-3), np.int64(128),
                 np.int64(0))
    assert checkpoint_path(*numpy_key) == checkpoint_path(*key)
    assert prepare(dataset="digits", hidden=(np.int64(8),), epochs=np.int64(2), data=data).model.sizes[1] == 8


def test_a_subset_of_a_loaded_dataset_trains_its_own_model(tmp_path, monkeypatch):
    """``replace(data, x_train=..., y_train=...)`` keeps the source's checksum, which alone keyed the model:
    digits' first 100 training samples were given the model cached for all 1347."""
    import torch

    from qannealq.data import train_mlp

    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path))
    data = load_dataset("digits")
    subset = replace(data, x_train=data.x_train[:100], y_train=data.y_train[:100])
    flipped = replace(data, y_train=(data.y_train + 1) % 10)  # same size, other labels
    paths = {checkpoint_path(d, (64, 8, 10), 2, 1e-3, 128, 0) for d in (data, subset, flipped)}
    assert len(paths) == 3
    train_mlp(data, (8,), 2, seed=0)
    cached, fresh = train_mlp(subset, (8,), 2, seed=0), train_mlp(subset, (8,), 2, seed=0, cache=False)
    assert all(torch.equal(a, b) for a, b in zip(cached.state_dict().values(), fresh.state_dict().values()))


def test_datasets_built_without_a_checksum_are_keyed_by_their_arrays():
    """A :class:`Dataset` made in Python has no checksum: its key was its size alone, so a second dataset of
    the same name and size (other labels) loaded the first one's trained model."""
    from qannealq.data import Dataset

    x = np.random.default_rng(0).random((50, 6), dtype=np.float32)
    labels = (x[:, 0] > 0.5).astype(np.int64)
    first, flipped = Dataset("custom", x, labels, x, labels, 2), Dataset("custom", x, 1 - labels, x, 1 - labels, 2)
    key = (8,), 3, 1e-2, 16, 0
    assert checkpoint_path(first, *key) == checkpoint_path(Dataset("custom", x.copy(), labels.copy(), x, labels, 2),
                                                           *key)
    assert checkpoint_path(first, *key) != checkpoint_path(flipped, *key)


def test_training_runs_under_its_own_thread_count_whatever_the_process_uses():
    """Digits' MLP trained under 1 and under 2 torch threads differ in their last bits (torch splits its sums
    by thread count); ``train_mlp(threads=1)`` gives the 1-thread network whatever the process's setting, and
    leaves that setting as it was."""
    import torch

    from qannealq.data import train_mlp
    from qannealq.experiment import RECIPES

    data, recipe = load_dataset("digits"), RECIPES["digits"]
    before = torch.get_num_threads()

    def train(threads):
        model = train_mlp(data, recipe.hidden, 8, recipe.lr, recipe.batch_size, cache=False, threads=threads)
        return [p.detach().clone() for p in model.parameters()]

    try:
        torch.set_num_threads(1)
        one = train(1)
        assert torch.get_num_threads() == 1
        two = train(2)
        torch.set_num_threads(2)
        pinned = train(1)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, pinned))  # the pin: the 1-thread network
    if all(torch.equal(a, b) for a, b in zip(one, two)):
        pytest.skip("this torch build sums alike on 1 and 2 threads: the pin was not needed here")


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_training_threads_are_refused(threads):
    from qannealq.data import train_mlp
    from qannealq.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="threads="):
        train_mlp(load_dataset("digits"), (4,), 1, cache=False, threads=threads)


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.parametrize("name, n_train, n_test, classes, train_per_class", [
    ("mnist", 60000, 10000, 10, None),
    pytest.param("fashion-mnist", 60000, 10000, 10, 6000, marks=pytest.mark.slow),
    pytest.param("emnist-letters", 124800, 20800, 26, 4800, marks=pytest.mark.slow)])
def test_shared_npz_datasets(name, n_train, n_test, classes, train_per_class):
    _shared(f"{name}.npz")
    data = load_dataset(name, data_dir=SHARED)
    _check(data, n_train, n_test, 784, classes)
    counts = np.bincount(data.y_train, minlength=classes)
    assert counts.sum() == n_train and (counts > 0).all()
    if train_per_class:
        assert (counts == train_per_class).all()
    if name == "mnist":
        assert data.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the canonical first training labels
        assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        assert abs(float(data.x_train.mean()) - 0.1307) < 1e-3


@pytest.mark.slow
def test_shared_cifar10_image_folder(tmp_path):
    _shared("cifar10")
    data = load_dataset("cifar10", data_dir=SHARED, cache=tmp_path)
    _check(data, 50000, 10000, 3072, 10)
    assert data.classes[:3] == ("airplane", "automobile", "bird")
    assert np.bincount(data.y_train).tolist() == [5000] * 10 and np.bincount(data.y_test).tolist() == [1000] * 10


class _StopAfter:
    """A reporter whose progress bar raises KeyboardInterrupt at its ``n``-th update (Ctrl-C mid-training)."""

    def __init__(self, n):
        self.n, self.updates = n, []

    def message(self, text):
        pass

    def progress(self, total, desc, unit):
        from contextlib import nullcontext

        outer = self

        class Bar:
            def update(self, k):
                outer.updates.append(k)
                if len(outer.updates) == outer.n:
                    raise KeyboardInterrupt

            def status(self, text):
                pass

        return nullcontext(Bar())


def test_interrupted_training_resumes_to_the_same_network(tmp_path, monkeypatch, caplog):
    """Ctrl-C after 3 of 6 epochs leaves the progress beside the checkpoint; the next call resumes at epoch 4
    (its bar starts at 3) and ends with the uninterrupted network, bit for bit, and removes the progress file.
    An unreadable progress file is a warning and a training from the first epoch, to the same network."""
    import logging

    import torch

    import qannealq.data.models as models
    from qannealq.data import checkpoint_path, partial_path, train_mlp

    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "SAVE_EVERY_S", 0.0)
    data = load_dataset("digits")
    args = (data, (8,), 6, 1e-2, 64)
    reference = train_mlp(*args, cache=False).state_dict()
    path = checkpoint_path(data, (64, 8, 10), 6, 1e-2, 64, 0)

    with pytest.raises(KeyboardInterrupt):
        train_mlp(*args, reporter=_StopAfter(3))
    assert not path.exists() and torch.load(partial_path(path), weights_only=True)["epochs_done"] == 3
    resumed_bar = _StopAfter(0)
    resumed = train_mlp(*args, reporter=resumed_bar).state_dict()
    assert resumed_bar.updates == [3, 1, 1, 1]  # picks up after epoch 3
    assert all(torch.equal(resumed[k], v) for k, v in reference.items())
    assert path.is_file() and not partial_path(path).exists()

    path.unlink()
    with pytest.raises(KeyboardInterrupt):
        train_mlp(*args, reporter=_StopAfter(2))
    partial_path(path).write_bytes(partial_path(path).read_bytes()[:100])  # truncated by a crash
    with caplog.at_level(logging.WARNING, logger="qannealq"):
        again = train_mlp(*args).state_dict()
    assert any("unreadable" in r.getMessage() and "first epoch" in r.getMessage() for r in caplog.records)
    assert all(torch.equal(again[k], v) for k, v in reference.items())

    path.unlink()  # weights that load, then an optimiser state that does not: the weights must not stay
    torch.save({"epochs_done": 3, "model": {k: v + 1.0 for k, v in reference.items()}, "optimizer": {"state": 1},
                "generator": torch.Generator().get_state()}, partial_path(path))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qannealq"):
        third = train_mlp(*args).state_dict()
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert all(torch.equal(third[k], v) for k, v in reference.items())


def test_a_model_cache_that_cannot_be_written_is_a_store_error_not_torchs_runtime_error(tmp_path):
    """A full disk under torch's file writer (here a file size limit: EFBIG, as ENOSPC) raised ``RuntimeError:
    ... unexpected pos 1152 vs 1046`` from ``train_mlp`` (a traceback from ``qannealq run``), not the cache's
    StoreError with its remedy."""
    import subprocess
    import sys

    code = """if True:
        import resource, signal
        from qannealq.data import load_dataset, train_mlp
        from qannealq.errors import StoreError
        data = load_dataset("digits")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
        try:
            train_mlp(data, (8,), 1)
        except StoreError as exc:
            print("StoreError:", exc)
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QANNEALQ_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "StoreError: cannot write" in done.stdout and "set QANNEALQ_CACHE" in done.stdout
    assert not [p.name for p in (tmp_path / "cache" / "models").iterdir()]  # no temporary file left


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_accuracy_of_a_model_in_another_dtype(dtype):
    """``accuracy`` gave a half-precision or float64 model (a quantized one too) float32 inputs: torch's "mat1 and
    mat2 must have the same dtype". The inputs are cast to the model's dtype."""
    import torch

    from qannealq.data import accuracy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.as_tensor(x))
    labels = logits.argmax(1).numpy()
    clear = (logits.topk(2).values.diff(dim=1).abs()[:, 0] > 0.05).numpy()  # no tie within half precision
    assert accuracy(model.to(getattr(torch, dtype)), x[clear], labels[clear]) == 1.0

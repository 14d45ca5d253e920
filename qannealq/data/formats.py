"""Readers of the datasets' file formats, each returning raw arrays: uint8 images ``(N, f)`` and int64 labels.

* Keras-style ``.npz`` (``x_train, y_train, x_test, y_test``);
* an ImageFolder tree (``train/<class>/*``, ``test/<class>/*``; classes sorted by name), decoded with Pillow;
* IDX files (the MNIST family's official format, gzipped or not); EMNIST's images are stored transposed;
* CIFAR-10's ``cifar-10-batches-py`` (pickled batches, images as CHW planes).

Colour images are flattened channel-first (``C, H, W``), as CIFAR's batches store them, whatever the format.
"""

from __future__ import annotations

import gzip
import pickle
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qannealq.errors import InvalidArgumentError

__all__ = ["RawSplits", "read_npz", "read_image_folder", "read_idx", "read_idx_pair", "read_cifar_batches",
           "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_REPLACE = "replace it with a fresh copy, or point --data-dir at a folder holding a good copy"
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class RawSplits:
    """Undecoded-range arrays as stored: images ``(N, f)`` (uint8 0..255), labels int64 as in the source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] = ()


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.reshape(len(x), -1))


def _channel_first(x: np.ndarray) -> np.ndarray:
    """Colour images ``(N, H, W, C)`` as ``(N, C, H, W)``: Keras's ``cifar10.load_data()`` is channel-last, so a
    ``cifar10.npz`` saved from it was flattened pixel by pixel (R, G, B, R, ...) where the batches and image
    folders give whole planes, and a model or quantized export from one source read another's inputs wrongly."""
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    return x


def read_npz(path: Path) -> RawSplits:
    """A Keras-style npz: ``x_train, y_train, x_test, y_test`` (images of any shape, flattened here; colour
    images channel-last ``(N, H, W, C)``, as Keras gives them, are flattened channel-first like every format).

    Raises:
        InvalidArgumentError: the file is not a readable npz (truncated or corrupt), or lacks an array.
    """
    try:
        with np.load(path) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise InvalidArgumentError(f"{path}: not a Keras-style dataset npz (missing {', '.join(missing)})")
            x_train, x_test = z["x_train"], z["x_test"]
            return RawSplits(_flat(_channel_first(x_train)), _labels(path, "train", x_train, z["y_train"]),
                             _flat(_channel_first(x_test)), _labels(path, "test", x_test, z["y_test"]))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, InvalidArgumentError):
            raise
        raise _corrupt(path, exc) from exc


def _labels(path: Path, split: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One int64 label per image (Keras's ``(N, 1)`` column taken as ``(N,)``). Labels were raveled whatever their
    shape: one-hot ``(N, 10)`` labels became 10 N labels of 0 and 1 beside N images, which trained a network on
    the wrong labels and failed only in the accuracy's numpy broadcast."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        raise InvalidArgumentError(f"{path}: y_{split} has shape {y.shape} for the {len(x)} images of x_{split}; give "
                                   "one integer label per image (class indices, not one-hot: take the argmax)")
    return y.astype(np.int64)


def _corrupt(path: Path, exc: BaseException) -> InvalidArgumentError:
    """The error for a dataset file that cannot be read: it names the file and how to replace it (gzip's and
    pickle's own errors name neither)."""
    return InvalidArgumentError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}): {_REPLACE}")


def _image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow raises SyntaxError for broken PNGs
        raise _corrupt(path, exc) from exc
    return array.transpose(2, 0, 1) if array.ndim == 3 else array


def _split_folder(root: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        images += [_image(p) for p in files]
        labels += [label] * len(files)
    if not images:
        raise InvalidArgumentError(f"{root}: no images in its class folders ({', '.join(classes)})")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise InvalidArgumentError(f"{root}: images of different sizes {sorted(shapes)}; resize them to one size")
    return _flat(np.stack(images)), np.asarray(labels, dtype=np.int64)


def read_image_folder(root: Path) -> RawSplits:
    """``root/train/<class>/*`` and ``root/test/<class>/*``; labels are the class folders' sorted order.

    A test class folder of images that train/ lacks is refused: its images were left out of the test set, silently
    (CIFAR-10 with train/truck missing: 9000 test images, 9 classes, and a 10-output network).
    """
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise InvalidArgumentError(f"{root}/train has no class folders: expected train/<class>/<image files>")
    extra = sorted(p.name for p in (root / "test").iterdir() if p.is_dir() and p.name not in classes
                   and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir()))
    if extra:
        raise InvalidArgumentError(f"{root}/test has class folders {', '.join(extra)} that {root}/train lacks (their "
                                   "images would be left out): give train/ and test/ the same class folders (was a "
                                   "copy cut short?)")
    x_train, y_train = _split_folder(root / "train", classes)
    x_test, y_test = _split_folder(root / "test", classes)
    return RawSplits(x_train, y_train, x_test, y_test, tuple(classes))


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzipped or plain): the magic's type and dimensions, big-endian data.

    Compression is told by the contents, not the name: a browser that unpacks ``.gz`` downloads keeps the name.
    """
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(path, exc) from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise InvalidArgumentError(f"{path}: not an IDX file (bad magic {data[:4].hex()}): {_REPLACE}")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(dims))
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise InvalidArgumentError(f"{path}: truncated IDX file ({len(data) - offset} bytes of data, "
                                   f"{count * dtype.itemsize} expected for shape {dims}): {_REPLACE}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def read_idx_pair(images: Path, labels: Path, transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split; ``transpose`` swaps each image's axes (EMNIST stores them so)."""
    x = read_idx(images)
    y = read_idx(labels).astype(np.int64).ravel()
    if len(x) != len(y):
        raise InvalidArgumentError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if transpose:
        x = x.transpose(0, 2, 1)
    return _flat(x.astype(np.uint8)), y


def read_cifar_batches(folder: Path) -> RawSplits:
    """CIFAR-10's python batches: ``data_batch_1..5`` (train) and ``test_batch``, with ``batches.meta``."""
    def load(name: str) -> dict:
        try:
            with open(folder / name, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
        except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            raise _corrupt(folder / name, exc) from exc
        if not isinstance(batch, dict):
            raise _corrupt(folder / name, TypeError(f"a pickled {type(batch).__name__}, not a CIFAR batch"))
        return batch

    train = [load(f"data_batch_{i}") for i in range(1, 6)]
    test = load("test_batch")
    meta = load("batches.meta") if (folder / "batches.meta").is_file() else {}
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(b"label_names", []))
    return RawSplits(np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in train]),
                     np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in train]),
                     np.asarray(test[b"data"], dtype=np.uint8), np.asarray(test[b"labels"], dtype=np.int64),
                     classes)

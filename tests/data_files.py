"""Small dataset files in each real format, written by the tests (npz, ImageFolder, IDX, CIFAR batches)."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

__all__ = ["images", "write_npz", "write_image_folder", "write_idx", "write_idx_dataset", "write_cifar_batches"]


def images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """``n`` random uint8 images of ``shape``, deterministic per seed."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_npz(path: Path, x_train, y_train, x_test, y_test) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_image_folder(root: Path, split_images: dict[str, list[tuple[str, np.ndarray]]], suffix: str = ".png") -> None:
    """``root/<split>/<class>/NNNN.png`` from ``{split: [(class, HxWx3 or HxW image), ...]}``."""
    from PIL import Image

    for split, items in split_images.items():
        for k, (cls, image) in enumerate(items):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{k:04d}{suffix}")


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """An IDX file of a uint8 array (magic 0x0803 / 0x0801), gzipped or not."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if gz else open)(path, "wb").write(header + array.tobytes())
    return path


def write_idx_dataset(folder: Path, names: tuple[str, str, str, str], x_train, y_train, x_test, y_test,
                      transpose: bool = False) -> list[Path]:
    """The four IDX files of a split; ``transpose`` stores images transposed, as EMNIST's files do."""
    if transpose:
        x_train, x_test = x_train.transpose(0, 2, 1), x_test.transpose(0, 2, 1)
    return [write_idx(folder / name, a, gz=name.endswith(".gz"))
            for name, a in zip(names, (x_train, y_train, x_test, y_test))]


def write_cifar_batches(folder: Path, train_hwc: np.ndarray, y_train, test_hwc: np.ndarray, y_test,
                        classes: list[str]) -> Path:
    """``cifar-10-batches-py``: five train batches (split evenly), ``test_batch`` and ``batches.meta``."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, x, y):
        data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # CHW planes, as the official batches
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": [int(v) for v in y]}, fh)

    for i, part in enumerate(np.array_split(np.arange(len(train_hwc)), 5), start=1):
        dump(f"data_batch_{i}", train_hwc[part], np.asarray(y_train)[part])
    dump("test_batch", test_hwc, y_test)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [c.encode() for c in classes]}, fh)
    return folder

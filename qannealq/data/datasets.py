"""Dataset loaders: the embedded sklearn digits, and the npz datasets of ``../shared/datasets``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qannealq.errors import InvalidArgumentError

__all__ = ["Dataset", "load_dataset", "load_digits", "load_npz", "DATASETS", "default_data_dir"]

NPZ_FILES = {"mnist": "mnist.npz", "fashion-mnist": "fashion-mnist.npz", "emnist-letters": "emnist-letters.npz"}
DATASETS = ("digits", *NPZ_FILES)


@dataclass(frozen=True)
class Dataset:
    """Flattened float32 inputs in [0, 1] and int64 labels 0..num_classes-1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def num_inputs(self) -> int:
        return self.x_train.shape[1]


def load_digits(input_size: int = 8) -> Dataset:
    """sklearn's 8x8 digits (shipped with scikit-learn), optionally average-pooled to ``input_size``².

    The split is a fixed stratified 75/25 split (1347 train, 450 test).
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    if input_size not in (1, 2, 4, 8):
        raise InvalidArgumentError(f"input_size={input_size} must divide 8: use 8, 4, 2 or 1")
    raw = _load()
    images = raw.images.astype(np.float32) / 16.0
    k = 8 // input_size
    images = images.reshape(-1, input_size, k, input_size, k).mean(axis=(2, 4))
    x = images.reshape(len(images), -1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, raw.target.astype(np.int64), test_size=0.25,
                                              stratify=raw.target, random_state=0)
    name = "digits" if input_size == 8 else f"digits{input_size}x{input_size}"
    return Dataset(name, x_tr, y_tr, x_te, y_te, 10)


def default_data_dir() -> Path:
    """``$QANNEALQ_DATA``, else ``./datasets``, else ``../shared/datasets`` (the first that exists)."""
    env = os.environ.get("QANNEALQ_DATA")
    if env:
        return Path(env)
    for candidate in (Path("datasets"), Path("..") / "shared" / "datasets"):
        if candidate.is_dir():
            return candidate
    return Path("..") / "shared" / "datasets"


def load_npz(name: str, data_dir: str | Path | None = None) -> Dataset:
    """MNIST, Fashion-MNIST or EMNIST-letters from a Keras-style npz (pixels / 255, flattened)."""
    if name not in NPZ_FILES:
        raise InvalidArgumentError(f"dataset={name!r} has no npz file: choose one of {', '.join(NPZ_FILES)}")
    path = Path(data_dir or default_data_dir()) / NPZ_FILES[name]
    if not path.is_file():
        raise InvalidArgumentError(
            f"dataset {name!r}: {path} not found; pass --data-dir (or set QANNEALQ_DATA) to the folder holding "
            f"{NPZ_FILES[name]}"
        )
    with np.load(path) as z:
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    ys = [arrays["y_train"].astype(np.int64), arrays["y_test"].astype(np.int64)]
    low = min(y.min() for y in ys)  # EMNIST letters are labelled 1..26
    ys = [y - low for y in ys]
    xs = [arrays[k].reshape(len(arrays[k]), -1).astype(np.float32) / 255.0 for k in ("x_train", "x_test")]
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], int(max(y.max() for y in ys)) + 1)


def load_dataset(name: str, data_dir: str | Path | None = None, input_size: int | None = None) -> Dataset:
    """Load a dataset by name (see :data:`DATASETS`)."""
    if name == "digits":
        return load_digits(8 if input_size is None else input_size)
    if input_size is not None:
        raise InvalidArgumentError(f"input_size applies to dataset 'digits' only, not {name!r}")
    return load_npz(name, data_dir)

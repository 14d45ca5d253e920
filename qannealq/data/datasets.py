"""Dataset loading: the embedded sklearn digits, the MNIST family and CIFAR-10 from any of their formats.

:func:`load_dataset` finds the dataset (:func:`qannealq.data.sources.find_source`: npz, ImageFolder or the
official raw files in the data folders, then the download folder), downloads it first when asked
(``download=True``, checked by SHA-256), and returns flattened float32 inputs in [0, 1] with int64 labels
``0..K-1``. Decoded raw files and image folders are cached as arrays under ``<cache>/datasets``, keyed by the
source's content checksum (:func:`source_checksum`), so a second load of CIFAR-10 only reads one array file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from qannealq.data import formats
from qannealq.data.sources import DATASETS, SPECS, DatasetSpec, Source, data_dirs, download_dir, find_source
from qannealq.errors import InvalidArgumentError
from qannealq.store import CACHE_REMEDY, atomic_path, atomic_write

__all__ = ["Dataset", "DATASETS", "cache_dir", "data_fingerprint", "dataset_checksum", "default_data_dir",
           "load_dataset", "load_digits", "load_npz", "source_checksum"]

logger = logging.getLogger(__name__)

_CACHE_FORMAT = 1


def cache_dir() -> Path:
    """``$QANNEALQ_CACHE`` or ``~/.cache/qannealq``."""
    return Path(os.environ.get("QANNEALQ_CACHE", Path.home() / ".cache" / "qannealq"))


@dataclass(frozen=True)
class Dataset:
    """Flattened float32 inputs in [0, 1] and int64 labels 0..num_classes-1.

    Attributes:
        checksum: SHA-256 identifying the source data (part of the trained model's cache key).
        source: where the data came from (e.g. ``npz at ../shared/datasets/mnist.npz``).
        classes: class names when the source has them (ImageFolder folders, CIFAR's meta file).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    checksum: str = ""
    source: str = ""
    classes: tuple[str, ...] = ()

    @property
    def num_inputs(self) -> int:
        return self.x_train.shape[1]

    @cached_property
    def train_digest(self) -> str:
        """SHA-256 of the training arrays, which the trained model depends on (part of its cache key, with
        :attr:`checksum`): ``dataclasses.replace(data, x_train=..., y_train=...)`` keeps the source's checksum.
        Computed once per instance; the arrays are taken as read-only."""
        return _array_digest(self.x_train, self.y_train)


def _array_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))  # in place: CIFAR-10's are 614 MB
    return digest.hexdigest()


def load_digits(input_size: int = 8) -> Dataset:
    """sklearn's 8x8 digits (shipped with scikit-learn), optionally average-pooled to ``input_size``².

    The split is a fixed stratified 75/25 split (1347 train, 450 test).
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    # 4.0 and True compare equal to 4 and 1, and failed later in numpy's reshape with a bare TypeError
    if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral) or input_size not in (1, 2, 4, 8):
        raise InvalidArgumentError(f"input_size={input_size!r} must divide 8: use 8, 4, 2 or 1")
    input_size = int(input_size)
    raw = _load()
    images = raw.images.astype(np.float32) / 16.0
    k = 8 // input_size
    images = images.reshape(-1, input_size, k, input_size, k).mean(axis=(2, 4))
    x = images.reshape(len(images), -1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, raw.target.astype(np.int64), test_size=0.25,
                                              stratify=raw.target, random_state=0)
    name = "digits" if input_size == 8 else f"digits{input_size}x{input_size}"
    return Dataset(name, x_tr, y_tr, x_te, y_te, 10, _array_digest(x_tr, y_tr, x_te, y_te), "scikit-learn",
                   tuple(str(i) for i in range(10)))


def default_data_dir() -> Path:
    """The first existing data folder of :func:`qannealq.data.sources.data_dirs` (else the last searched)."""
    dirs = data_dirs()
    return next((d for d in dirs if d.is_dir()), dirs[-1])


def source_checksum(source: Source, cache: str | Path | None = None) -> str:
    """SHA-256 identifying a source by its contents: of the files (npz, IDX, CIFAR batches), or for an
    ImageFolder tree of every image's relative path and bytes.

    Hashing 60 000 images takes seconds, so a tree's content checksum is remembered in
    ``<cache>/datasets/folder-checksums.json`` under a quick key of every image's path, size and modification
    time: a second load costs one ``stat`` per image, and a copy or remount of the same images (new times)
    hashes them once more and finds the same checksum, hence the same decoded arrays and the same trained
    model (a key of the times alone retrained the model after every remount).
    """
    digest = hashlib.sha256(source.format.encode())
    if source.format == "folder":
        root = source.paths[0]
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in formats.IMAGE_SUFFIXES)
        quick = hashlib.sha256(str(root.resolve()).encode())
        for path in images:
            st = path.stat()
            quick.update(f"{path.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        index_path = Path(cache if cache is not None else cache_dir()) / "datasets" / "folder-checksums.json"
        index = _read_index(index_path)
        if quick.hexdigest() in index:
            return index[quick.hexdigest()]
        for path in images:
            digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        # read again: another process may have added its folders while these images were hashed
        index = {**_read_index(index_path), quick.hexdigest(): digest.hexdigest()}
        index_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(index_path, json.dumps(index, indent=0, sort_keys=True), CACHE_REMEDY)
        return digest.hexdigest()
    files = source.paths if source.format != "cifar" else sorted(
        p for p in source.paths[0].iterdir() if p.name.startswith(("data_batch_", "test_batch", "batches.meta")))
    from qannealq.data.download import sha256_file

    for path in files:
        sha = sha256_file(path)
        _check_listed_sha256(path, sha)
        digest.update(sha.encode())
    return digest.hexdigest()


_SUMS_FILE = "SHA256SUMS"


def _check_listed_sha256(path: Path, sha: str) -> None:
    """Refuse a data file whose SHA-256 ``sha`` differs from the one its folder's ``SHA256SUMS`` lists for it
    (``sha256sum``'s lines, ``HEX  NAME`` or ``HEX *NAME``; a digest of at least 16 hex digits is compared as a
    prefix). Without this check a modified ``mnist.npz`` beside the shared folder's ``SHA256SUMS`` was loaded
    silently (and trained its own model); a file the list does not name is not checked.

    Raises:
        ChecksumError: the digests differ; the file is kept.
    """
    sums = path.parent / _SUMS_FILE
    if not sums.is_file():
        return
    for line in sums.read_text(errors="replace").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].removeprefix("*") != path.name:
            continue
        listed = parts[0].lower()
        if 16 <= len(listed) <= 64 and all(c in "0123456789abcdef" for c in listed) and not sha.startswith(listed):
            from qannealq.data.download import ChecksumError

            raise ChecksumError(f"{path}: SHA-256 {sha} differs from the {listed} that {sums} lists for it: the file "
                                "was modified or damaged; replace it with a fresh copy (or point --data-dir at a "
                                f"folder holding a good one), or update {sums} if the change is meant")


def dataset_checksum(name: str, data_dir: str | Path | None = None, cache: str | Path | None = None) -> str:
    """The :attr:`Dataset.checksum` that :func:`load_dataset` would give, from the files alone (no decoding;
    ``digits``: its 8x8 form's, from scikit-learn whatever ``data_dir``).

    Raises:
        DatasetNotFoundError: not found there (nor in the download folder).
    """
    if name == "digits":
        return load_digits().checksum
    cache = Path(cache) if cache is not None else cache_dir()
    return source_checksum(find_source(_spec(name), data_dir, cache), cache)


def data_fingerprint(settings: Mapping[str, Any]) -> dict[str, str]:
    """The datasets a run's ``settings`` read from a folder given to them: ``{where: SHA-256}`` for each mapping
    (at any depth; ``where`` its dotted path, ``""`` at the top) holding a ``dataset`` and a ``data_dir`` that is
    not None (a :class:`qannealq.config.ModelConfig`'s fields). A results store records it, so that a run whose
    ``--data-dir`` moved resumes from the new folder when the files there are the same
    (:meth:`qannealq.store.ResultStore.open`).

    Raises:
        DatasetNotFoundError: a dataset is not found in its folder.
    """
    out: dict[str, str] = {}

    def walk(mapping: Mapping[str, Any], where: str) -> None:
        if mapping.get("data_dir") is not None and isinstance(mapping.get("dataset"), str):
            out[where] = dataset_checksum(mapping["dataset"], mapping["data_dir"])
        for key, value in mapping.items():
            if isinstance(value, Mapping):
                walk(value, f"{where}.{key}" if where else str(key))

    walk(settings, "")
    return out


def _read(source: Source, spec: DatasetSpec) -> formats.RawSplits:
    if source.format == "npz":
        return formats.read_npz(source.paths[0])
    if source.format == "folder":
        return formats.read_image_folder(source.paths[0])
    if source.format == "cifar":
        return formats.read_cifar_batches(source.paths[0])
    x_tr, y_tr = formats.read_idx_pair(source.paths[0], source.paths[1], spec.transpose)
    x_te, y_te = formats.read_idx_pair(source.paths[2], source.paths[3], spec.transpose)
    return formats.RawSplits(x_tr, y_tr, x_te, y_te)


def _read_index(path: Path) -> dict[str, str]:
    """The folder-checksum index (empty when missing or unreadable: the checksums are then computed again)."""
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _decoded(source: Source, spec: DatasetSpec, checksum: str, cache: Path) -> formats.RawSplits:
    """The raw arrays of a non-npz source, from the decoded-array cache when its checksum is there."""
    path = cache / "datasets" / f"{spec.name}-{checksum[:24]}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return formats.RawSplits(z["x_train"], z["y_train"], z["x_test"], z["y_test"],
                                         tuple(json.loads(str(z["classes"]))))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            logger.warning("decoded cache %s unreadable (%s: %s): decoding again", path, type(exc).__name__, exc)
    raw = _read(source, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, CACHE_REMEDY) as tmp:
        np.savez(tmp, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test, y_test=raw.y_test,
                 classes=np.array(json.dumps(list(raw.classes))), format=np.array(_CACHE_FORMAT))
    logger.info("decoded %s and cached the arrays in %s", source.describe(), path)
    return raw


def _to_dataset(raw: formats.RawSplits, spec: DatasetSpec, source: Source, checksum: str) -> Dataset:
    """Scale pixels to [0, 1] (float32, :func:`_pixel_scale`), shift labels to 0..K-1 and check their range.

    An image folder's labels are its sorted class folders' indices, from 0 whatever the published labels.
    """
    offset = 0 if source.format == "folder" else spec.label_offset
    ys = []
    for split, y in (("train", raw.y_train), ("test", raw.y_test)):
        y = y.astype(np.int64) - offset
        if y.size and (y.min() < 0 or y.max() >= spec.num_classes):
            raise InvalidArgumentError(
                f"dataset {spec.name!r} from {source.describe()}: {split} labels span "
                f"{y.min() + offset}..{y.max() + offset}, expected {offset}.."
                f"{spec.num_classes - 1 + offset}; check that the files belong to {spec.name}")
        ys.append(y)
    scale = _pixel_scale(raw, spec, source)
    xs = [x.reshape(len(x), -1).astype(np.float32) / scale for x in (raw.x_train, raw.x_test)]
    return Dataset(spec.name, xs[0], ys[0], xs[1], ys[1], spec.num_classes, checksum, source.describe(),
                   raw.classes)


def _pixel_scale(raw: formats.RawSplits, spec: DatasetSpec, source: Source) -> float:
    """What the images are divided by to lie in [0, 1]: 255 for pixels 0..255 (uint8, or integers or floats of
    that range), 1 for floats already in [0, 1] and for booleans (binarised images). Decided on both splits
    together, so that they are scaled alike.
    Every image was divided by 255 before: an npz of floats in [0, 1] became inputs in [0, 1/255] and one of
    uint16 pixels inputs up to 257, silently, with other accuracies than the standard data's.

    Raises:
        InvalidArgumentError: values outside 0..255 (standardised inputs, 16-bit pixels) or not numbers.
    """
    x_train, x_test = raw.x_train, raw.x_test
    if x_train.dtype == np.uint8 and x_test.dtype == np.uint8:
        return 255.0
    if x_train.dtype == np.bool_ and x_test.dtype == np.bool_:  # binarised images: refused as "values 0..1"
        return 1.0
    kinds = {x_train.dtype.kind, x_test.dtype.kind}
    values = [x for x in (x_train, x_test) if x.size]
    lo = min((float(x.min()) for x in values), default=0.0)
    hi = max((float(x.max()) for x in values), default=0.0)
    if kinds <= {"u", "i", "f"} and np.isfinite(lo) and np.isfinite(hi) and lo >= 0 and hi <= 255:
        return 1.0 if kinds == {"f"} and hi <= 1 else 255.0
    raise InvalidArgumentError(
        f"dataset {spec.name!r} from {source.describe()}: images of dtype {x_train.dtype}/{x_test.dtype} with values "
        f"{lo:g}..{hi:g}; give pixels 0..255 (uint8 as published) or floats in [0, 1] (not standardised: qannealq "
        "scales them itself)")


def _spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise InvalidArgumentError(f"dataset={name!r} is unknown: choose one of {', '.join(DATASETS)}")
    return SPECS[name]


def load_npz(name: str, data_dir: str | Path | None = None) -> Dataset:
    """A dataset from its Keras-style npz in ``data_dir`` (pixels / 255, flattened; labels from 0)."""
    spec = _spec(name)
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    source = Source(name, "npz", (folder / f"{name}.npz",))
    if not source.paths[0].is_file():
        raise InvalidArgumentError(f"dataset {name!r}: {source.paths[0]} not found; pass --data-dir (or set "
                                   f"QANNEALQ_DATA) to the folder holding {name}.npz")
    return _to_dataset(formats.read_npz(source.paths[0]), spec, source, source_checksum(source))


def load_dataset(name: str, data_dir: str | Path | None = None, input_size: int | None = None,
                 download: bool = False, cache: str | Path | None = None, mirror: str | None = None) -> Dataset:
    """Load a dataset by name (see :data:`DATASETS`) from wherever it is found.

    Args:
        name: the dataset.
        data_dir: the folder to search (default: ``$QANNEALQ_DATA``, else the default folders).
        input_size: digits only: pool to ``input_size``².
        download: when it is found nowhere, fetch it from its canonical location (SHA-256 checked).
        cache: the cache folder (default :func:`cache_dir`): downloads and decoded arrays.
        mirror: a base URL replacing the canonical locations (for tests and private mirrors).

    Raises:
        DatasetNotFoundError: not found (and not downloaded); the message lists every place searched.
        ChecksumError, DownloadError: the download failed.
    """
    if name == "digits":
        return load_digits(8 if input_size is None else input_size)
    if input_size is not None:
        raise InvalidArgumentError(f"input_size applies to dataset 'digits' only, not {name!r}")
    spec = _spec(name)
    cache = Path(cache) if cache is not None else cache_dir()
    try:
        source = find_source(spec, data_dir, cache)
    except FileNotFoundError:
        if not download:
            raise
        from qannealq.data.download import download_dataset

        download_dataset(spec, cache, mirror)
        source = find_source(spec, data_dir, cache)
    checksum = source_checksum(source, cache)
    try:
        raw = formats.read_npz(source.paths[0]) if source.format == "npz" else _decoded(source, spec, checksum, cache)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{exc}{_refetch(spec, source, cache)}") from exc
    return _to_dataset(raw, spec, source, checksum)


def _refetch(spec: DatasetSpec, source: Source, cache: Path) -> str:
    """How to fetch a dataset whose files cannot be read. ``--download`` fetches only a dataset found nowhere,
    so the damaged files must go first: the message's "`qannealq datasets --download NAME` fetches one" found the
    same file again and failed with the same message."""
    if not spec.resources:
        return ""
    fetch = f"`qannealq datasets --download {spec.name}`"
    if source.downloaded:
        return f"; to download it again, delete {download_dir(spec, cache)} and run {fetch}"
    where = source.paths[0] if len(source.paths) == 1 else source.paths[0].parent
    return f"; to download it instead, move {where} out of the data folder and run {fetch}"

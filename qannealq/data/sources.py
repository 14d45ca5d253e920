"""Where each dataset can come from: its file names in every format, its download, and the search for it.

A dataset is looked for, in order, in each data folder (``--data-dir``; else ``$QANNEALQ_DATA``; else
``./datasets``, ``../shared/datasets`` and, in a source checkout, ``<repo>/../shared/datasets``) as a
Keras-style ``NAME.npz``, an ImageFolder tree ``NAME/{train,test}/<class>/*`` or the official raw files, and
then in the cache's ``downloads/NAME`` folder (filled by ``--download``). :func:`find_source` returns the
first found, or raises :class:`DatasetNotFoundError` listing every place searched and the command that
fetches the dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qannealq.errors import QannealqError

__all__ = ["Resource", "DatasetSpec", "Source", "SPECS", "DATASETS", "DatasetNotFoundError", "data_dirs", "find_source",
           "candidates", "data_env_note", "download_dir"]


class DatasetNotFoundError(QannealqError, FileNotFoundError):
    """No folder holds the dataset; the message lists every place searched and how to get it."""


@dataclass(frozen=True)
class Resource:
    """One file to download: its name, the URLs tried in order, and its pinned SHA-256."""

    filename: str
    urls: tuple[str, ...]
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's names, label range and sources.

    Attributes:
        name: as given to ``--dataset``.
        num_classes: labels are ``0..num_classes-1`` after subtracting ``label_offset``.
        label_offset: the first label as published (EMNIST letters: 1, for A).
        raw: ``idx`` (the four IDX files in ``raw_files``), ``cifar`` (``cifar-10-batches-py``) or ``""``.
        raw_files: train images, train labels, test images, test labels (``.gz`` or not).
        raw_dirs: folder names (under a data folder) that may hold the raw files.
        transpose: the raw images are stored transposed (EMNIST).
        resources: what ``--download`` fetches (from the canonical locations, checked by SHA-256).
        archive_members: files taken out of a downloaded zip (EMNIST's ``gzip.zip``) into the folder.
    """

    name: str
    num_classes: int
    label_offset: int = 0
    raw: str = ""
    raw_files: tuple[str, ...] = ()
    raw_dirs: tuple[str, ...] = ()
    transpose: bool = False
    resources: tuple[Resource, ...] = ()
    archive_members: tuple[str, ...] = ()
    download_folder: str = ""

    @property
    def folder(self) -> str:
        """The download folder's name (EMNIST's splits share one, as they share one zip)."""
        return self.download_folder or self.name


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz")
_MNIST_SHA = ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
_FASHION_SHA = ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")
_EMNIST_ZIP = Resource("gzip.zip", ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",),
                       "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e")
_CIFAR_TAR = Resource("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                      "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
_EMNIST_SPLITS = {"letters": (26, 1), "balanced": (47, 0), "byclass": (62, 0), "bymerge": (47, 0),
                  "digits": (10, 0), "mnist": (10, 0)}


def _emnist(split: str) -> DatasetSpec:
    classes, offset = _EMNIST_SPLITS[split]
    files = tuple(f"emnist-{split}-{f.replace('t10k', 'test')}" for f in _IDX)
    return DatasetSpec(f"emnist-{split}", classes, offset, "idx", files,
                       (f"emnist-{split}", "emnist", "emnist/gzip", "gzip"), True, (_EMNIST_ZIP,),
                       tuple(f"gzip/{f}" for f in files), "emnist")


SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", 10, 0, "idx", _IDX, ("mnist", "MNIST/raw"), False,
                         tuple(Resource(f, tuple(m + f for m in _MNIST_MIRRORS), s) for f, s in zip(_IDX, _MNIST_SHA))),
    "fashion-mnist": DatasetSpec("fashion-mnist", 10, 0, "idx", _IDX, ("fashion-mnist", "FashionMNIST/raw"), False,
                                 tuple(Resource(f, (_FASHION + f,), s) for f, s in zip(_IDX, _FASHION_SHA))),
    **{f"emnist-{split}": _emnist(split) for split in _EMNIST_SPLITS},
    "cifar10": DatasetSpec("cifar10", 10, 0, "cifar", (), ("cifar-10-batches-py", "cifar10/cifar-10-batches-py"),
                           False, (_CIFAR_TAR,)),
}

DATASETS = ("digits", "mnist", "fashion-mnist", "emnist-letters", "cifar10",
            *(name for name in SPECS if name.startswith("emnist-") and name != "emnist-letters"))
"""Every dataset name; EMNIST's other splits load when their files are present (or downloaded). Here, beside
:data:`SPECS`, and not in :mod:`qannealq.data.datasets` (which imports numpy): ``--dataset``'s choices."""


@dataclass(frozen=True)
class Source:
    """Where a dataset was found: its format (``npz``, ``folder``, ``idx``, ``cifar``) and path(s)."""

    name: str
    format: str
    paths: tuple[Path, ...]
    downloaded: bool = False

    def describe(self) -> str:
        where = self.paths[0] if len(self.paths) == 1 else self.paths[0].parent
        return f"{self.format} at {where}" + (" (downloaded)" if self.downloaded else "")


def _repo_shared() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "datasets" if (root / "pyproject.toml").is_file() else None


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The data folders searched: ``data_dir``; else ``$QANNEALQ_DATA``; else the default folders."""
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get("QANNEALQ_DATA")
    if env:
        return [Path(env)]
    found = [Path("datasets"), Path("..") / "shared" / "datasets"]
    shared = _repo_shared()
    if shared is not None and all(shared.resolve() != p.resolve() for p in found):
        found.append(shared)
    return found


def download_dir(spec: DatasetSpec, cache: Path) -> Path:
    """Where ``--download`` puts the dataset's files: ``<cache>/downloads/<name>`` (EMNIST: ``emnist``)."""
    return Path(cache) / "downloads" / spec.folder


def candidates(spec: DatasetSpec, folder: Path, downloaded: bool = False) -> list[Source]:
    """Every form ``spec`` may take under ``folder`` (found or not), in the order they are tried."""
    out = [Source(spec.name, "npz", (folder / f"{spec.name}.npz",), downloaded),
           Source(spec.name, "folder", (folder / spec.name,), downloaded)]
    for sub in spec.raw_dirs + (("",) if downloaded else ()):
        base = folder / sub if sub else folder
        if spec.raw == "idx":
            out.append(Source(spec.name, "idx", tuple(base / f for f in spec.raw_files), downloaded))
        elif spec.raw == "cifar":
            out.append(Source(spec.name, "cifar", (base,), downloaded))
    return out


def _exists(source: Source) -> Source | None:
    if source.format == "npz":
        return source if source.paths[0].is_file() else None
    if source.format == "folder":
        root = source.paths[0]
        return source if (root / "train").is_dir() and (root / "test").is_dir() else None
    if source.format == "cifar":  # every batch: an unpack cut short is not a dataset, and --download finishes it
        batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        return source if all((source.paths[0] / name).is_file() for name in batches) else None
    paths = []
    for path in source.paths:  # IDX: each file gzipped, or not
        plain = path.with_suffix("") if path.suffix == ".gz" else path
        hit = path if path.is_file() else plain if plain.is_file() else None
        if hit is None:
            return None
        paths.append(hit)
    return Source(source.name, source.format, tuple(paths), source.downloaded)


def _searched(source: Source) -> str:
    if source.format == "idx":
        return f"{source.paths[0].parent}/ (IDX files {', '.join(p.name for p in source.paths)}, .gz or not)"
    what = {"npz": "Keras-style npz", "folder": "ImageFolder tree train/<class>/*, test/<class>/*",
            "cifar": "cifar-10-batches-py (data_batch_1..5, test_batch)"}[source.format]
    return f"{source.paths[0]} ({what})"


def find_source(spec: DatasetSpec, data_dir: str | Path | None, cache: Path) -> Source:
    """The first form of ``spec`` found in the data folders, then in the download folder.

    Raises:
        DatasetNotFoundError: none found; the message lists every place searched and how to get it.
    """
    tried: list[Source] = []
    for folder in data_dirs(data_dir):
        tried += candidates(spec, folder)
    tried += candidates(spec, download_dir(spec, cache), downloaded=True)
    for source in tried:
        hit = _exists(source)
        if hit is not None:
            return hit
    places = "\n".join(f"  - {_searched(s)}" for s in tried)
    fetch = (f"fetch it with `qannealq datasets --download {spec.name}` (or `qannealq sweep --download`, "
             f"download=True in Python), or " if spec.resources else "")
    raise DatasetNotFoundError(f"dataset {spec.name!r} not found; {data_env_note(data_dir)}searched, in order:\n"
                               f"{places}\n{fetch}point --data-dir (or $QANNEALQ_DATA) at a folder holding it")


def data_env_note(data_dir: str | Path | None) -> str:
    """The first words of the not-found error when ``$QANNEALQ_DATA``, the folder searched, is none: a typo there
    read as "not found (9 places searched)", as ``--data-dir``'s did before it was checked."""
    env = os.environ.get("QANNEALQ_DATA")
    if data_dir is not None or not env or Path(env).is_dir():
        return ""
    return (f"$QANNEALQ_DATA={env!r} is not a folder (set it to the folder holding the datasets, or unset it to "
            "search ./datasets and ../shared/datasets); ")

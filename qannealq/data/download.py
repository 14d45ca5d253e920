"""``--download``: fetch a dataset's files from their canonical locations, each checked by its pinned SHA-256.

A file is streamed into a temporary file next to its destination while its SHA-256 is computed; on a
mismatch the file is deleted and :class:`ChecksumError` raised; on success it is renamed into place. Archives
(CIFAR-10's tar.gz, EMNIST's zip) are verified the same way and then unpacked (only the members needed, with
path checks), each member written whole or not at all, so that an unpack cut short is finished by the next
``--download``. ``mirror`` replaces every URL's folder (tests serve files from a loopback HTTP server).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Sequence

from qannealq.data.sources import DatasetSpec, Resource, download_dir
from qannealq.errors import QannealqError
from qannealq.store import CACHE_REMEDY, atomic_path, replace_synced

__all__ = ["ChecksumError", "DownloadError", "sha256_file", "fetch_resource", "download_dataset"]

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20


class DownloadError(QannealqError, OSError):
    """A file could not be downloaded from any of its URLs; the message names them."""


class ChecksumError(DownloadError):
    """A downloaded (or stored) file's SHA-256 differs from the pinned one; the file has been deleted. Also a data
    file's differing from the one its folder's ``SHA256SUMS`` lists (that file is kept)."""


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _urls(resource: Resource, mirror: str | None) -> Sequence[str]:
    return [mirror.rstrip("/") + "/" + resource.filename] if mirror else resource.urls


def _stream(url: str, tmp: Path, timeout: float) -> str:
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "qannealq"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as fh:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def fetch_resource(resource: Resource, folder: Path, mirror: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``resource`` into ``folder`` (unless already there with the right checksum); return its path.

    Raises:
        ChecksumError: the file's SHA-256 is not the pinned one (the file is deleted).
        DownloadError: no URL could be read.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / resource.filename
    if path.is_file():
        if sha256_file(path) == resource.sha256:
            return path
        path.unlink()
        logger.warning("%s: stored file had a wrong checksum; deleted, downloading again", path)
    errors = []
    for url in _urls(resource, mirror):
        tmp = folder / f".{resource.filename}.{os.getpid()}.part"
        try:
            logger.info("downloading %s", url)
            digest = _stream(url, tmp, timeout)
        except (OSError, urllib.error.URLError) as exc:
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            continue
        if digest != resource.sha256:
            tmp.unlink(missing_ok=True)
            raise ChecksumError(f"{url}: SHA-256 {digest} differs from the pinned {resource.sha256}; the file was "
                                "deleted. The server sent other bytes than the published file: try again later "
                                "or fetch it by hand and check it")
        replace_synced(tmp, path)
        return path
    raise DownloadError(f"could not download {resource.filename}: " + "; ".join(errors)
                        + f". Check the network, or fetch the file by hand to {path} and download again (a file "
                        f"there is used when its SHA-256 is the pinned {resource.sha256})")


def _inside(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep):
        raise DownloadError(f"archive member {name!r} would be written outside {root}; refusing to unpack it")
    return target


def _unpack_tar(archive: Path, folder: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                target = _inside(folder, member.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, atomic_path(target, CACHE_REMEDY) as tmp, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def _unpack_zip(archive: Path, folder: Path, members: Sequence[str]) -> None:
    with zipfile.ZipFile(archive) as zf:
        for name in members:
            target = _inside(folder, Path(name).name)
            if not target.is_file():  # written whole or not at all (atomic_path): a file there is complete
                with zf.open(name) as src, atomic_path(target, CACHE_REMEDY) as tmp, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def download_dataset(spec: DatasetSpec, cache: Path, mirror: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch and unpack ``spec``'s files into ``<cache>/downloads/<folder>``; return that folder.

    Raises:
        DownloadError: the dataset has no download, or a file could not be fetched.
        ChecksumError: a file differs from its pinned SHA-256 (it is deleted).
    """
    if not spec.resources:
        raise DownloadError(f"dataset {spec.name!r} has no download; it ships with scikit-learn")
    folder = download_dir(spec, cache)
    for resource in spec.resources:
        path = fetch_resource(resource, folder, mirror, timeout)
        if path.name.endswith(".tar.gz"):
            _unpack_tar(path, folder)
        elif path.suffix == ".zip":
            _unpack_zip(path, folder, spec.archive_members)
    return folder

"""``--download``: files served by a loopback HTTP server the test starts (never the internet); the SHA-256
is checked, a corrupted file is rejected and removed, archives are unpacked and the dataset loads."""

from __future__ import annotations

import functools
import hashlib
import tarfile
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from data_files import images, write_cifar_batches, write_idx_dataset
from qannealq.data import load_dataset
from qannealq.data import sources as sources_module
from qannealq.data.download import ChecksumError, DownloadError, fetch_resource
from qannealq.data.sources import SPECS, Resource


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_verified_and_a_corrupted_file_rejected_and_removed(server, tmp_path):
    www, url = server
    (www / "f.bin").write_bytes(b"published bytes")
    good = Resource("f.bin", (f"{url}/f.bin",), hashlib.sha256(b"published bytes").hexdigest())
    path = fetch_resource(good, tmp_path / "dl")
    assert path.read_bytes() == b"published bytes"

    (www / "f.bin").write_bytes(b"corrupted bytes")  # the server now sends other bytes
    path.unlink()
    with pytest.raises(ChecksumError, match="differs from the pinned"):
        fetch_resource(good, tmp_path / "dl")
    assert not list((tmp_path / "dl").iterdir())  # neither the file nor a partial one is left

    path.write_bytes(b"stale local copy")  # a stored file with a wrong checksum is replaced by a good one
    (www / "f.bin").write_bytes(b"published bytes")
    assert fetch_resource(good, tmp_path / "dl").read_bytes() == b"published bytes"


def test_unreachable_urls_are_named_with_where_to_place_the_file_by_hand(tmp_path, server):
    """The message said "place the file in the data folder yourself" without naming the folder; it names the
    path the next run picks up, and the SHA-256 it must have, and a file placed there is used."""
    www, url = server
    data = b"published bytes"
    resource = Resource("missing.bin", (f"{url}/missing.bin",), hashlib.sha256(data).hexdigest())
    with pytest.raises(DownloadError, match=r"could not download missing\.bin: .*missing\.bin") as info:
        fetch_resource(resource, tmp_path / "dl", timeout=5)
    place = tmp_path / "dl" / "missing.bin"
    assert f"fetch the file by hand to {place} and download again (a file there is used when its SHA-256 is " \
           f"the pinned {resource.sha256})" in str(info.value)
    place.write_bytes(data)  # fetched by hand
    assert fetch_resource(resource, tmp_path / "dl", timeout=5) == place


def test_the_real_pins_reject_a_fake_mnist_and_nothing_is_kept(server, tmp_path):
    www, url = server
    x = images(3, (28, 28))
    write_idx_dataset(www, SPECS["mnist"].raw_files, x, np.arange(3), x, np.arange(3))
    with pytest.raises(ChecksumError):
        load_dataset("mnist", data_dir=tmp_path / "empty", download=True, cache=tmp_path / "cache", mirror=url)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def _serve_mnist(www, monkeypatch) -> tuple[np.ndarray, list]:
    """MNIST's IDX files of 8 + 3 images served from ``www``, and SPECS' MNIST pointed at them: test images, files."""
    x, xt = images(8, (28, 28)), images(3, (28, 28), seed=5)
    files = write_idx_dataset(www, SPECS["mnist"].raw_files, x, np.arange(8) % 10, xt, np.arange(3))
    monkeypatch.setitem(sources_module.SPECS, "mnist", replace(
        SPECS["mnist"], resources=tuple(Resource(p.name, ("https://example.invalid/" + p.name,), _sha(p))
                                        for p in files)))
    return xt, files


def test_download_then_load_idx_and_cifar_archives(server, tmp_path, monkeypatch):
    www, url = server
    xt, files = _serve_mnist(www, monkeypatch)
    data = load_dataset("mnist", data_dir=tmp_path / "empty", download=True, cache=tmp_path / "cache", mirror=url)
    np.testing.assert_array_equal(data.x_test, xt.reshape(3, -1) / np.float32(255))
    assert "(downloaded)" in data.source

    train, _ = _serve_cifar(www, tmp_path, monkeypatch)
    cifar = load_dataset("cifar10", data_dir=tmp_path / "empty", download=True, cache=tmp_path / "cache", mirror=url)
    assert cifar.x_train.shape == (5, 3072) and cifar.y_test.tolist() == [1, 2]
    np.testing.assert_array_equal(cifar.x_train[0], train[0].transpose(2, 0, 1).reshape(-1) / np.float32(255))


def test_a_damaged_dataset_says_how_to_download_it_and_that_works(server, tmp_path, monkeypatch):
    """A damaged file said "`qannealq datasets --download NAME` fetches one", but ``--download`` fetches only a
    dataset found nowhere: the damaged file was found first and failed with the same message, in a data folder
    and in the download folder alike. The message now says which file or folder to remove first."""
    import shutil

    www, url = server
    xt, files = _serve_mnist(www, monkeypatch)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "mnist.npz").write_bytes(b"PK\x03\x04 cut short")
    load = functools.partial(load_dataset, "mnist", data_dir=data_dir, download=True, cache=tmp_path / "cache",
                             mirror=url)
    with pytest.raises(ValueError, match="corrupt or truncated") as err:
        load()
    assert (f"move {data_dir / 'mnist.npz'} out of the data folder and run `qannealq datasets --download mnist`"
            in str(err.value))
    (data_dir / "mnist.npz").rename(tmp_path / "mnist.npz")  # as told
    assert "(downloaded)" in load().source

    downloaded = tmp_path / "cache" / "downloads" / "mnist"
    (downloaded / files[0].name).write_bytes(files[0].read_bytes()[:100])  # damaged later
    with pytest.raises(ValueError, match="corrupt or truncated") as err:
        load()
    assert f"delete {downloaded} and run `qannealq datasets --download mnist`" in str(err.value)
    shutil.rmtree(downloaded)  # as told
    np.testing.assert_array_equal(load().x_test, xt.reshape(3, -1) / np.float32(255))


def _serve_cifar(www, tmp_path, monkeypatch) -> tuple[np.ndarray, Path]:
    """A 5 + 2 image CIFAR-10 archive in the test server's folder ``www``, as SPECS' one resource (its test labels
    1 and 2); returns the training images and the batches' folder the archive holds."""
    train, test = images(5, (32, 32, 3)), images(2, (32, 32, 3), seed=6)
    batches = write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py", train, np.arange(5), test,
                                  np.array([1, 2]), [f"c{i}" for i in range(10)])
    with tarfile.open(www / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    resource = Resource("cifar-10-python.tar.gz", ("https://example.invalid/x",), _sha(www / "cifar-10-python.tar.gz"))
    monkeypatch.setitem(sources_module.SPECS, "cifar10", replace(SPECS["cifar10"], resources=(resource,)))
    return train, batches


def test_an_unpack_cut_short_is_finished_by_the_next_download(server, tmp_path, monkeypatch):
    """Ctrl-C while CIFAR-10's archive was unpacked left data_batch_1 whole, data_batch_2 cut short and the
    rest missing: the folder counted as found (data_batch_1 alone was looked for), so ``--download`` fetched
    nothing and every load failed on the missing or truncated batch. Members are now written whole or not at
    all, and a folder lacking a batch is not found: the next download unpacks the verified archive again."""
    import qannealq.data.download as download_module

    www, url = server
    _, batches = _serve_cifar(www, tmp_path, monkeypatch)
    copy = download_module.shutil.copyfileobj  # shutil's own: the test server sends its files with it too

    def interrupted(src, dst):
        if "data_batch_2" in str(getattr(dst, "name", "")):
            dst.write(src.read(100))
            raise KeyboardInterrupt
        copy(src, dst)

    monkeypatch.setattr(download_module.shutil, "copyfileobj", interrupted)
    load = functools.partial(load_dataset, "cifar10", data_dir=tmp_path / "empty", download=True,
                             cache=tmp_path / "cache", mirror=url)
    with pytest.raises(KeyboardInterrupt):
        load()
    unpacked = tmp_path / "cache" / "downloads" / "cifar10" / "cifar-10-batches-py"
    assert (unpacked / "data_batch_1").is_file()
    assert all(p.read_bytes() == (batches / p.name).read_bytes() for p in unpacked.iterdir())  # no half file
    monkeypatch.setattr(download_module.shutil, "copyfileobj", copy)
    cifar = load()
    assert cifar.x_train.shape == (5, 3072) and cifar.y_test.tolist() == [1, 2]


def test_without_download_nothing_is_fetched(server, tmp_path):
    www, url = server
    with pytest.raises(FileNotFoundError, match="--download"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty", cache=tmp_path / "cache", mirror=url)
    assert not (tmp_path / "cache" / "downloads").exists()

"""MLP definition, deterministic training with a cached checkpoint, and accuracy."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from qannealq.data.datasets import Dataset, cache_dir
from qannealq.errors import InvalidArgumentError
from qannealq.report import LogReporter, Reporter
from qannealq.store import CACHE_REMEDY, atomic_write, json_default

__all__ = ["MLP", "train_mlp", "accuracy", "cache_dir", "checkpoint_path", "partial_path", "SAVE_EVERY_S"]

logger = logging.getLogger(__name__)


class MLP(torch.nn.Sequential):
    """Dense ReLU network ``sizes[0] -> ... -> sizes[-1]`` (no activation after the last layer)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        layers: list[torch.nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        super().__init__(*layers)
        self.sizes = tuple(sizes)


#: Seconds of training between two saves of a run's progress (a crash or Ctrl-C loses at most this much).
SAVE_EVERY_S = 30.0


def _load_partial(partial: Path, model: MLP, opt: torch.optim.Optimizer, gen: torch.Generator) -> int:
    """The epochs done by an interrupted run saved at ``partial`` (its model, optimiser and shuffling states
    restored into the objects given), or 0 with the objects as they were (and a warning when the file is
    unreadable)."""
    if not partial.is_file():
        return 0
    initial = ({k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict(), gen.get_state())
    try:
        state = torch.load(partial, weights_only=True)
        done = int(state["epochs_done"])
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
    except Exception as exc:  # truncated, corrupt or of another shape: train from the start
        model.load_state_dict(initial[0])  # whatever part of the file was applied is undone
        opt.load_state_dict(initial[1])
        gen.set_state(initial[2])
        logger.warning("saved training progress %s is unreadable (%s: %s); training from the first epoch",
                       partial, type(exc).__name__, exc)
        return 0
    logger.info("resuming training from %s after epoch %d", partial, done)
    return done


def _save(obj: object, path: Path) -> None:
    """``torch.save`` of ``obj`` to ``path`` atomically and synced (:func:`~qannealq.store.atomic_write`).
    Saved to memory first: torch's file writer ends a full disk in a ``RuntimeError`` ("unexpected pos"), a
    traceback where the cache's :class:`~qannealq.errors.StoreError` says to free disk space."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, buffer.getvalue(), CACHE_REMEDY)


def _fit(model: MLP, data: Dataset, epochs: int, lr: float, batch_size: int, seed: int,
         progress: Callable[[int], None] | None = None, partial: Path | None = None) -> None:
    """Adam on shuffled mini-batches. With ``partial`` (a file path), the progress (model, optimiser and
    shuffling generator after the last whole epoch) is saved there at most every :data:`SAVE_EVERY_S`
    seconds, and a run finding it resumes from it: the network is bit for bit the uninterrupted one's."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    done = _load_partial(partial, model, opt, gen) if partial is not None else 0
    if done and progress is not None:
        progress(done)
    model.train()
    saved = time.monotonic()
    for epoch in range(done, epochs):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        if partial is not None and epoch + 1 < epochs and time.monotonic() - saved >= SAVE_EVERY_S:
            _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                   "epochs_done": epoch + 1}, partial)
            saved = time.monotonic()
        if progress is not None:
            progress(1)
    model.eval()


def partial_path(path: Path) -> Path:
    """Where an interrupted training run of the checkpoint ``path`` keeps its progress."""
    return path.with_name(path.stem + ".partial.pt")


def checkpoint_path(data: Dataset, sizes: Sequence[int], epochs: int, lr: float, batch_size: int,
                    seed: int, threads: int = 1) -> Path:
    """The cached checkpoint of a training run, keyed by (dataset, its data checksum, a digest of its training
    arrays, architecture, seed, epochs, learning rate, batch size, training threads, torch version): new data or
    any other setting trains a new model. The arrays' digest (:attr:`Dataset.train_digest`) covers a dataset made
    in Python without a checksum, and a subset or edit of a loaded one, which keeps its source's checksum and
    was given the whole dataset's model."""
    key = json.dumps({"data": data.name, "checksum": data.checksum, "train": data.train_digest,
                      "sizes": list(sizes), "epochs": epochs, "lr": lr, "batch": batch_size, "seed": seed,
                      "threads": threads, "torch": torch.__version__.split("+")[0]}, sort_keys=True,
                     default=json_default)  # np.int64(2) epochs as 2: json.dumps alone raised TypeError
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"{data.name}-{'-'.join(map(str, sizes))}-s{seed}-e{epochs}-{digest}.pt"


def _load_checkpoint(path: Path, sizes: Sequence[int]) -> MLP | None:
    """The cached model at ``path``, or None (with a warning) when the file is truncated or corrupt."""
    with torch.random.fork_rng(devices=[]):
        model = MLP(sizes)  # a fresh one: a failed load may have filled part of it
    try:
        model.load_state_dict(torch.load(path, weights_only=True))
    except Exception as exc:  # truncated zip, bad pickle, other shapes: whatever it is, the cache is rebuilt
        logger.warning("cached model %s is unreadable (%s: %s); training it again and replacing the file", path,
                       type(exc).__name__, exc)
        return None
    model.eval()
    logger.info("loaded cached model %s", path)
    return model


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_mlp(data: Dataset, hidden: Sequence[int], epochs: int, lr: float = 1e-3, batch_size: int = 128,
              seed: int = 0, cache: bool = True, reporter: Reporter | None = None, threads: int = 1) -> MLP:
    """Train (or load from the cache) an MLP on ``data`` with a fixed seed.

    With ``cache``, a run interrupted after :data:`SAVE_EVERY_S` seconds of training leaves its progress beside
    the checkpoint (:func:`partial_path`) and the next call resumes it, to the same network.

    Training runs under ``threads`` torch threads whatever the process uses elsewhere: the thread count
    changes how torch splits its sums, so the same seed gave different networks on 1 and 2 threads (on digits,
    MNIST and CIFAR-10 alike); with it fixed, a seed gives the same network on any machine of the same
    instruction set. The global RNG is not touched: initialisation runs under ``torch.random.fork_rng``.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidArgumentError(f"threads={threads!r} must be a positive integer (torch threads for training)")
    sizes = (data.num_inputs, *hidden, data.num_classes)
    path = checkpoint_path(data, sizes, epochs, lr, batch_size, seed, threads)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLP(sizes)
    if cache and path.is_file():
        cached = _load_checkpoint(path, sizes)
        if cached is not None:
            return cached
    partial = partial_path(path) if cache else None
    if partial is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]), _torch_threads(threads), (reporter or LogReporter()).progress(
            epochs, f"training {data.name} MLP {'-'.join(map(str, sizes))}", "epoch") as bar:
        torch.manual_seed(seed)
        _fit(model, data, epochs, lr, batch_size, seed, bar.update, partial)
    if cache:
        _save(model.state_dict(), path)
        partial.unlink(missing_ok=True)
        logger.info("trained and cached model %s", path)
    return model


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 4096) -> float:
    """Top-1 accuracy of ``model`` on inputs ``x`` and labels ``y``.

    The inputs are cast to the dtype of the model's parameters: a float16, bfloat16 or float64 model (a quantized
    one's too) failed on float32 inputs with torch's "mat1 and mat2 must have the same dtype".
    """
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.as_tensor(x[start:start + batch_size], dtype=dtype))
            correct += int((logits.argmax(1).numpy() == y[start:start + batch_size]).sum())
    return correct / len(x)

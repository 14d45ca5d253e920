"""``layer-sa``'s run objects: the choice of device and the numba run (:class:`_Run`).

A run holds one solve's shared inputs and offers ``polish(starts)`` and ``anneal(v, u, g, seed)``; the
numba one is :class:`_Run` (rows in parallel threads over :func:`anneal_rows`), the torch one
:class:`._layer_torch.TorchRun` (imported only when a torch device is asked for). Both the whole-layer solve
(:mod:`.layer_sa`) and the single-BQM path (:mod:`._layer_single`) get theirs from :func:`make_run`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from qannealq.errors import BackendUnavailableError

from ._layer_dense import DenseQubos, greedy_tolerance, pair_partners
from ._layer_kernel import anneal_rows
from ._layer_schedule import anneal_schedule

__all__ = ["resolve_device", "make_run"]


def resolve_device(device: str) -> str:
    """The device a run uses: ``"cpu"`` (the numba kernel), ``"torch-cpu"`` or a CUDA device (torch).

    ``"auto"`` is CUDA when ``torch.cuda.is_available()``, else ``"cpu"``.

    Raises:
        BackendUnavailableError: ``device`` asks for CUDA and torch sees no CUDA device.
    """
    if device in ("cpu", "torch-cpu"):
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"device={device!r}: torch {torch.__version__} sees no CUDA device; use "
                                      "device='auto' or 'cpu' (numba), or install a CUDA build of torch")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise BackendUnavailableError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def make_run(dense: DenseQubos, params: dict[str, Any]) -> tuple["_Run | Any", str]:
    """The run object for ``params["device"]`` (numba :class:`_Run` or torch ``TorchRun``) and the device used."""
    device = resolve_device(params["device"])
    if device == "cpu":
        return _Run(dense, params), device
    from ._layer_torch import TorchRun  # below this module: torch is loaded only when asked for

    return TorchRun(dense, params, "cpu" if device == "torch-cpu" else device), device


def _row_seeds(seed: int, rows: int) -> np.ndarray:
    return np.random.SeedSequence(seed).generate_state(rows, np.uint64) | np.uint64(1)


class _Run:
    """One solve of a :class:`DenseQubos`: the shared inputs of both kernel calls."""

    def __init__(self, dense: DenseQubos, params: dict[str, Any]) -> None:
        self.dense, self.params = dense, params
        self.diag = dense.diag
        self.partners, self.couplings = pair_partners(dense.mat, params["pairs"])
        counts = dense.free.sum(axis=1)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.indices = np.nonzero(dense.free)[1].astype(np.int64)
        self.tol = greedy_tolerance(dense.lin)

    def kernel(self, owner: np.ndarray, v: np.ndarray, u: np.ndarray, g: np.ndarray, betas: np.ndarray,
               seeds: np.ndarray) -> np.ndarray:
        """Run :func:`anneal_rows` on row ranges in ``num_threads`` threads; returns the best row states."""
        d = self.dense
        best = v.copy()
        args = (d.mat, self.diag, d.lin, d.steps, d.free, self.partners, self.couplings, self.indptr,
                self.indices, owner, v, u, g, betas, self.tol[owner], seeds.copy(),
                int(self.params["polish_sweeps"]), best)
        threads = max(1, min(int(self.params["num_threads"] or os.cpu_count() or 1), owner.size))
        bounds = np.linspace(0, owner.size, threads + 1).astype(int)
        if threads == 1:
            anneal_rows(*args, 0, owner.size)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda k: anneal_rows(*args, bounds[k], bounds[k + 1]), range(threads)))
        return best

    def polish(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Greedy descent from every start ``(n, m)``; returns the states, ``d ∘ v`` and fields."""
        n = starts.shape[0]
        v = np.where(self.dense.free, starts, 0).astype(np.uint8)
        u = self.dense.steps * v
        g = u @ self.dense.mat
        v = self.kernel(np.arange(n), v, u, g, np.empty((n, 0)), np.ones(n, np.uint64))
        return v, u, g

    def anneal(self, v: np.ndarray, u: np.ndarray, g: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``num_reads`` reheat anneals per problem from the polished states; returns rows and owners."""
        owner, betas = anneal_schedule(self.dense, self.params, v)
        rows = self.kernel(owner, v[owner], u[owner], g[owner], betas, _row_seeds(seed, owner.size))
        return rows, owner

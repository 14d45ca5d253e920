"""``layer-sa``'s run objects: the choice of device and the numba run (:class:`_Run`).

A run holds one solve's shared inputs and its :class:`~._layer_schedule.Clock`, and offers
``polish(starts, owner=None) -> states`` and ``anneal(v, seed) -> (rows, owner)``; the numba one is
:class:`_Run` (blocks of rows in parallel threads over :func:`anneal_block` and :func:`polish_block`, the
schedule in chunks so that the clock can trace the energy and fit the schedule to a time limit), the torch
one :class:`._layer_torch.TorchRun` (imported only when a torch device is asked for). Both the whole-layer
solve (:mod:`.layer_sa`) and the single-BQM path (:mod:`._layer_single`) get theirs from :func:`make_run`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from qannealq.errors import BackendUnavailableError

from ._layer_dense import DenseQubos, greedy_tolerance, pair_partners
from ._layer_kernel import anneal_block, polish_block, up_fields
from ._layer_schedule import Clock, anneal_plan

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


def make_run(dense: DenseQubos, params: dict[str, Any], clock: Clock | None = None) -> tuple["_Run | Any", str]:
    """The run object for ``params["device"]`` (numba :class:`_Run` or torch ``TorchRun``) and the device used."""
    device = resolve_device(params["device"])
    if device == "cpu":
        return _Run(dense, params, clock), device
    from ._layer_torch import TorchRun  # below this module: torch is loaded only when asked for

    return TorchRun(dense, params, "cpu" if device == "torch-cpu" else device, clock), device


def _row_seeds(seed: int, rows: int) -> np.ndarray:
    return np.random.SeedSequence(seed).generate_state(rows, np.uint64) | np.uint64(1)


class _Run:
    """One solve of a :class:`DenseQubos` on the CPU: the shared inputs of the kernel calls, its threads and clock.

    Args:
        dense: the problems.
        params: the sampler's parameters.
        clock: the solve's time limit and trace (default: no limit).
    """

    def __init__(self, dense: DenseQubos, params: dict[str, Any], clock: Clock | None = None) -> None:
        self.dense, self.params = dense, params
        self.clock = Clock() if clock is None else clock
        self.diag = dense.diag
        self.partners, self.couplings = pair_partners(dense.mat, params["pairs"])
        counts = dense.free.sum(axis=1)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.indices = np.nonzero(dense.free)[1].astype(np.int64)
        self.tol = greedy_tolerance(dense.lin)
        self.threads = max(1, int(params["num_threads"] or os.cpu_count() or 1))
        self.stop = np.zeros(1, np.int64)

    def _rows(self, owner: np.ndarray, v: np.ndarray) -> tuple:
        """The kernel's per-row arrays for states ``v`` of problems ``owner``: common args, energies."""
        d = self.dense
        v = np.ascontiguousarray(np.where(d.free[owner], v, 0), dtype=np.uint8)
        h = up_fields(d.mat, self.diag, d.lin[owner], d.steps[owner], v)
        energy, best_e = np.zeros(owner.size), np.zeros(owner.size)
        common = (d.mat, d.steps, d.free, self.partners, self.couplings, self.indptr, self.indices, owner, v, h,
                  energy, best_e, v.copy(), self.tol[owner])
        return common, best_e, common[12]

    def _parallel(self, kernel: Callable, args: tuple, rows: int) -> None:
        """``kernel(*args, block)`` over blocks of rows in ``num_threads`` threads (GIL released)."""
        blocks = np.array_split(np.arange(rows), min(rows, 4 * self.threads)) if rows else []
        if self.threads == 1 or len(blocks) <= 1:
            for block in blocks:
                kernel(*args, block)
            return
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(lambda block: kernel(*args, block), blocks))

    def polish(self, starts: np.ndarray, owner: np.ndarray | None = None) -> np.ndarray:
        """Greedy descent from every start ``(R, m)`` (row r of problem ``owner[r]``, default r); the states."""
        owner = np.arange(starts.shape[0]) if owner is None else owner
        common, _, best_v = self._rows(owner, starts)
        with self.clock.watch(self.stop):
            self._parallel(polish_block, (*common, int(self.params["polish_sweeps"]), self.stop), owner.size)
        return best_v

    def anneal(self, v: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``num_reads`` reheat anneals per problem from the polished states ``v``; returns rows and owners.

        The schedule runs in chunks; after each, the clock records the best total energy. Under a time limit
        the first chunk measures the speed and the schedule is shortened to fit when it would not.
        """
        owner, hot, cold, sweeps = anneal_plan(self.dense, self.params, v)
        if sweeps == 0 or owner.size == 0:
            return v[:0], owner[:0]
        n, reads = v.shape[0], owner.size // v.shape[0]
        common, best_e, best_v = self._rows(owner, v[owner])
        base = self.dense.energies(v)[owner]
        seeds, polish_sweeps = _row_seeds(seed, owner.size), int(self.params["polish_sweeps"])
        chunk, done, total = max(1, -(-sweeps // 16)), 0, sweeps
        with self.clock.watch(self.stop):
            while done < total and not self.stop[0]:
                step, t0 = min(chunk, total - done), time.perf_counter()
                self._parallel(anneal_block, (*common, hot, cold, total, done, done + step, seeds, self.stop),
                               owner.size)
                done += step
                self.clock.record(float((base + best_e).reshape(n, reads).min(axis=1).sum()))
                if done == step and self.clock.limit is not None:
                    total = self._fit(total, done, (time.perf_counter() - t0) / step)
            self._parallel(polish_block, (*common, polish_sweeps, self.stop), owner.size)
        self.clock.record(float((base + best_e).reshape(n, reads).min(axis=1).sum()))
        return best_v, owner

    def _fit(self, total: int, done: int, per_sweep: float) -> int:
        """The schedule length that fits the time left (keeping two sweeps' worth for the final polish)."""
        fit = done + int(0.9 * (self.clock.remaining() - 2.0 * per_sweep) / max(per_sweep, 1e-9))
        if fit < total:
            self.clock.cut = True
            return max(done, fit)
        return total

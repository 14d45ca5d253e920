"""``layer-sa``'s effort, anneal schedule and clock, shared by the numba and torch runs and the single-BQM path.

:func:`effort` sizes the reads and sweeps to the problem and the ``effort`` preset, :func:`hot_ladder` gives
each read its hot end, :func:`anneal_plan` the rows of the reheat anneal (owner and both schedule ends of each
row) and :class:`Clock` the time limit of a solve and its energy trace.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ._layer_dense import DenseQubos, beta_ends, beta_schedule

__all__ = ["EFFORTS", "Preset", "preset", "effort", "hot_ladder", "anneal_plan", "anneal_schedule", "Clock"]


@dataclass(frozen=True)
class Preset:
    """How much an ``effort`` level anneals, on top of the size scaling of :func:`effort`.

    Attributes:
        reads: factor on the size-scaled reads.
        sweeps: factor on the size-scaled sweeps.
        min_sweeps: floor of the sweeps on wide layers (where the size scaling would give fewer).
        max_sweeps: ceiling of the size-scaled sweeps.
        rtn_start: polish the RTN start too (a second start: costs one more polish).
    """

    reads: float
    sweeps: float
    min_sweeps: int
    max_sweeps: int
    rtn_start: bool


#: The ``effort`` presets. ``fast`` polishes the warm start and anneals only problems small enough to be cheap;
#: ``default`` adds one long cold anneal per neuron on wide layers; ``thorough`` anneals 16 times longer.
EFFORTS: dict[str, Preset] = {
    "fast": Preset(1.0, 1.0, 0, 256, False),
    "default": Preset(1.0, 1.0, 96, 256, True),
    "thorough": Preset(4.0, 16.0, 1536, 4096, True),
}


def preset(params: dict[str, Any]) -> Preset:
    """The :class:`Preset` named by ``params["effort"]`` (None: ``default``)."""
    return EFFORTS[params.get("effort") or "default"]


def effort(params: dict[str, Any], m: int) -> tuple[int, int]:
    """``(num_reads, num_sweeps)``; where None, scaled to the size ``m`` and the ``effort`` preset.

    Small problems are cheap and rugged, wide ones smooth and costly per sweep: ``num_reads = clip(f_r 2^25 /
    m³, 1, 128)``, ``num_sweeps = clip(f_s 2^32 / m⁴, min, max)`` with the preset's factors and bounds
    (:data:`EFFORTS`). Default: 1 read x 96 sweeps on a 785-input layer, 15 x 256 at m = 129, 122 x 256 on
    65-variable neurons, 128 x 256 below that.
    """
    p = preset(params)
    m = max(int(m), 1)
    reads = params["num_reads"] if params["num_reads"] is not None else np.clip(p.reads * 2**25 / m**3, 1, 128)
    sized = min(p.sweeps * 2**32 / m**4, p.max_sweeps)
    sweeps = params["num_sweeps"] if params["num_sweeps"] is not None else max(sized, p.min_sweeps)
    return int(reads), int(sweeps)


def hot_ladder(params: dict[str, Any], reads: int) -> np.ndarray:
    """Hot-end acceptance of each read: the first two reheat cold, the others climb to ``ladder_acceptance``."""
    lo, hi = float(params["hot_acceptance"]), float(params["ladder_acceptance"])
    ladder = np.geomspace(lo, max(hi, lo), max(reads - 1, 2))[1:]
    return np.concatenate([[lo, lo], ladder])[:reads] if reads > 2 else np.full(reads, lo)


def anneal_plan(dense: DenseQubos, params: dict[str, Any], v: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray, int]:
    """Rows of the reheat anneal from the polished states ``v`` ``(n, m)``: ``(owner, hot, cold, sweeps)``.

    ``num_reads`` rows per problem (problem-major), each with the ends of :func:`beta_ends` from its problem's
    single-flip costs at ``v`` and its rung of :func:`hot_ladder`; ``sweeps`` is the schedule's length.
    """
    n = v.shape[0]
    reads, sweeps = effort(params, dense.mat.shape[0])
    owner = np.repeat(np.arange(n), reads)
    hot = np.tile(hot_ladder(params, reads), n)
    hot_b, cold_b = beta_ends(dense.single_flip_costs(v)[owner], hot, params["cold_acceptance"],
                              params["beta_range"])
    return owner, hot_b, cold_b, sweeps


def anneal_schedule(dense: DenseQubos, params: dict[str, Any], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`anneal_plan` as ``(owner (R,), betas (R, S))``, every sweep's inverse temperature spelled out."""
    n = v.shape[0]
    reads, sweeps = effort(params, dense.mat.shape[0])
    owner = np.repeat(np.arange(n), reads)
    hot = np.tile(hot_ladder(params, reads), n)
    betas = beta_schedule(dense.single_flip_costs(v)[owner], sweeps, hot, params["cold_acceptance"],
                          params["beta_range"])
    return owner, betas


class Clock:
    """The time limit of one solve and the energy it has reached over time (its trace).

    Args:
        limit: seconds the solve may take (None: no limit).
        start: ``time.perf_counter()`` at the start of the solve (default: now).

    Attributes:
        trace: ``(seconds since start, energy)`` points, in order; the energy is the sum over the problems of
            the best energy found so far.
        cut: True once the limit has shortened the run (the result then depends on timing).
    """

    def __init__(self, limit: float | None = None, start: float | None = None) -> None:
        self.limit = None if limit is None else float(limit)
        self.start = time.perf_counter() if start is None else start
        self.trace: list[tuple[float, float]] = []
        self.cut = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit)."""
        return np.inf if self.limit is None else self.limit - self.elapsed()

    def expired(self) -> bool:
        """True once the limit has passed (and marks the run as cut)."""
        over = bool(self.remaining() <= 0)
        self.cut |= over
        return over

    def record(self, energy: float) -> None:
        """Add a trace point: the best total energy now."""
        self.trace.append((round(self.elapsed(), 6), float(energy)))

    @contextmanager
    def watch(self, flag: np.ndarray) -> Iterator[None]:
        """Within the block, set ``flag[0] = 1`` when the limit passes (a timer thread), for the numba kernel."""
        if self.limit is None:
            yield
            return

        def fire() -> None:
            flag[0] = 1
            self.cut = True

        timer = threading.Timer(max(self.remaining(), 0.0), fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

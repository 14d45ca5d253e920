"""``layer-sa``'s effort and anneal schedule, shared by the numba and torch runs and the single-BQM path.

:func:`effort` sizes the reads and sweeps to the problem, :func:`hot_ladder` gives each read its hot end and
:func:`anneal_schedule` builds the rows of the reheat anneal (owner and inverse temperatures of each row).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._layer_dense import DenseQubos, beta_schedule

__all__ = ["effort", "hot_ladder", "anneal_schedule"]


def effort(params: dict[str, Any], m: int) -> tuple[int, int]:
    """``(num_reads, num_sweeps)``; where None, scaled to the size ``m`` (small problems are cheap and rugged).

    ``num_reads = clip(2^25 / m³, 2, 128)``, ``num_sweeps = clip(2^32 / m⁴, 8, 256)``: 2 x 8 on a 785-input
    MNIST layer, 15 x 15 at m = 129, 122 x 240 on 65-variable digits neurons, 128 x 256 below that.
    """
    m = max(int(m), 1)
    reads = params["num_reads"] if params["num_reads"] is not None else np.clip(2**25 // m**3, 2, 128)
    sweeps = params["num_sweeps"] if params["num_sweeps"] is not None else np.clip(2**32 // m**4, 8, 256)
    return int(reads), int(sweeps)


def hot_ladder(params: dict[str, Any], reads: int) -> np.ndarray:
    """Hot-end acceptance of each read: the first two reheat cold, the others climb to ``ladder_acceptance``."""
    lo, hi = float(params["hot_acceptance"]), float(params["ladder_acceptance"])
    ladder = np.geomspace(lo, max(hi, lo), max(reads - 1, 2))[1:]
    return np.concatenate([[lo, lo], ladder])[:reads] if reads > 2 else np.full(reads, lo)


def anneal_schedule(dense: DenseQubos, params: dict[str, Any], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the reheat anneal from the polished states ``v`` ``(n, m)``: ``(owner (R,), betas (R, S))``.

    ``num_reads`` rows per problem (problem-major), each with the geometric schedule of :func:`beta_schedule`
    from its problem's single-flip costs at ``v`` and its rung of :func:`hot_ladder`.
    """
    n = v.shape[0]
    reads, sweeps = effort(params, dense.mat.shape[0])
    owner = np.repeat(np.arange(n), reads)
    hot = np.tile(hot_ladder(params, reads), n)
    betas = beta_schedule(dense.single_flip_costs(v)[owner], sweeps, hot, params["cold_acceptance"],
                          params["beta_range"])
    return owner, betas

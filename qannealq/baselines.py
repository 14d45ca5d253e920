"""Baselines on the same grid and objective as the QUBO: RTN, GPTQ and GPTQ restricted to floor/ceil.

GPTQ (Frantar et al., 2023) quantizes one coordinate at a time and spreads the rounding error over the
not-yet-quantized coordinates with the upper Cholesky factor of ``H⁻¹`` (damped by ``percdamp`` times the
mean diagonal, as in the GPTQ paper), in blocks with lazy batch updates. Its floor/ceil-restricted variant
chooses, for each free coordinate, between the clipped floor ``k`` and ``k + 1`` of the *original* weight,
so it is a valid QUBO assignment (and a strong warm start).
"""

from __future__ import annotations

import numpy as np

from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem

__all__ = ["rtn", "gptq", "gptq_restricted", "BASELINES"]


def rtn(problem: LayerProblem) -> np.ndarray:
    """Round-to-nearest grid integers ``(n, m)``."""
    return problem.grid.nearest(problem.weights, problem.steps)


def _inverse_cholesky(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """Upper Cholesky factor of the damped inverse Hessian (dead inputs given a unit diagonal)."""
    h = hessian.copy()
    h[dead, dead] = 1.0
    damp = percdamp * float(np.mean(np.diag(h)))
    h[np.diag_indices_from(h)] += damp
    lower = np.linalg.cholesky(h)
    inv_lower = np.linalg.solve(lower, np.eye(h.shape[0]))
    hinv = inv_lower.T @ inv_lower
    return np.linalg.cholesky(hinv).T


def _gptq(problem: LayerProblem, restricted: bool, percdamp: float, block_size: int) -> np.ndarray:
    if not percdamp >= 0:
        raise InvalidArgumentError(f"percdamp={percdamp!r} must be >= 0 (GPTQ uses 0.01)")
    grid, steps = problem.grid, problem.steps
    dead = problem.dead
    w = problem.weights.copy()
    w[:, dead] = 0.0
    u = _inverse_cholesky(problem.hessian, dead, percdamp)
    lo, hi = problem.base, problem.base + problem.free
    ints = np.empty_like(problem.base)
    m = w.shape[1]
    for start in range(0, m, block_size):
        stop = min(start + block_size, m)
        errs = np.zeros((w.shape[0], stop - start))
        for j in range(start, stop):
            col = w[:, j]
            if restricted:
                z = np.clip(np.floor(grid.scaled(col, steps[:, j]) + 0.5), lo[:, j], hi[:, j]).astype(np.int64)
            else:
                z = grid.nearest(col, steps[:, j])
            ints[:, j] = z
            err = (col - grid.dequantize(z, steps[:, j])) / u[j, j]
            w[:, j + 1:stop] -= np.outer(err, u[j, j + 1:stop])
            errs[:, j - start] = err
        w[:, stop:] -= errs @ u[start:stop, stop:]
    ints[:, dead] = problem.base[:, dead]
    return ints


def gptq(problem: LayerProblem, percdamp: float = 0.01, block_size: int = 128) -> np.ndarray:
    """GPTQ grid integers ``(n, m)`` (nearest level of the error-corrected weight)."""
    return _gptq(problem, False, percdamp, block_size)


def gptq_restricted(problem: LayerProblem, percdamp: float = 0.01, block_size: int = 128) -> np.ndarray:
    """GPTQ restricted to each coordinate's floor/ceil: a valid QUBO assignment, as integers ``(n, m)``."""
    return _gptq(problem, True, percdamp, block_size)


BASELINES = {"rtn": rtn, "gptq": gptq, "gptq-restricted": gptq_restricted}

"""Baselines on the same grid and objective as the QUBO: RTN, GPTQ and GPTQ restricted to floor/ceil.

GPTQ (Frantar et al., 2023) quantizes one coordinate at a time and spreads the rounding error over the
not-yet-quantized coordinates with the upper Cholesky factor of ``H⁻¹`` (damped by ``percdamp`` times the
mean diagonal, as in the GPTQ paper), in blocks with lazy batch updates. Its floor/ceil-restricted variant
chooses, for each free coordinate, between the clipped floor ``k`` and ``k + 1`` of the *original* weight,
so it is a valid QUBO assignment (and a strong warm start).

``act_order`` (``gptq-act``, ``gptq-restricted-act``) quantizes the inputs in order of decreasing ``H_jj``
(the GPTQ reference code's ``--act-order``, AutoGPTQ's ``desc_act``) instead of index order: the inputs
with the most signal are rounded first, while the most others are left to absorb their error. On the first
layers of ``benchmarks/frontier.py`` it lowers GPTQ's error above the best-known QUBO optimum from 51 to
38 % (MNIST int4) and from 823 to 345 % (CIFAR-10 int2), GPTQ-restricted's from 65 to 48 % and from 1018
to 679 % (the README's frontier table).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, LayerStats

__all__ = ["rtn", "gptq", "gptq_restricted", "gptq_act", "gptq_restricted_act", "BASELINES", "ACT_ORDER"]


def rtn(problem: LayerProblem) -> np.ndarray:
    """Round-to-nearest grid integers ``(n, m)``."""
    return problem.grid.nearest(problem.weights, problem.steps)


#: Bytes of stacked per-neuron factors GPTQ holds at once on per-neuron ``H_i`` (rows advance together).
_CHUNK_BYTES = 2 ** 28


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


def _gptq(problem: LayerProblem, restricted: bool, percdamp: float, block_size: int,
          act_order: bool = False) -> np.ndarray:
    if not percdamp >= 0:
        raise InvalidArgumentError(f"percdamp={percdamp!r} must be >= 0 (GPTQ uses 0.01)")
    if act_order:
        if problem.per_neuron:
            raise InvalidArgumentError("act_order needs the layer's one shared H; this problem has one H_i per "
                                       "neuron (the relu-aware objective): use gptq or gptq-restricted")
        order = np.argsort(-np.diag(problem.hessian), kind="stable")
        stats = problem.stats
        permuted = replace(problem, stats=LayerStats(stats.hessian[np.ix_(order, order)], stats.cross[:, order],
                                                     stats.target_sq, stats.num_samples),
                           weights=problem.weights[:, order], steps=problem.steps[:, order],
                           base=problem.base[:, order], free=problem.free[:, order])
        ints = _gptq(permuted, restricted, percdamp, block_size)
        return ints[:, np.argsort(order)]
    if problem.per_neuron:  # one H_i per neuron (qannealq.weighted): each row on its own Cholesky factor,
        n, m = problem.weights.shape  # rows in chunks of stacked factors: _CHUNK_BYTES, or an eighth of a
        limit = getattr(getattr(problem.stats, "objective", None), "memory_limit", None)  # smaller memory limit
        chunk = max(1, min(_CHUNK_BYTES, limit // 8 if limit else _CHUNK_BYTES) // (8 * m * m))
        return np.concatenate([
            _gptq_rows(problem, slice(a, min(a + chunk, n)),
                       np.stack([_neuron_factor(problem, i, percdamp) for i in range(a, min(a + chunk, n))]),
                       problem.dead[a:a + chunk], restricted, block_size)
            for a in range(0, n, chunk)])
    u = _inverse_cholesky(problem.hessian, problem.dead, percdamp)
    return _gptq_rows(problem, slice(None), u, problem.dead, restricted, block_size)


def _reversed_inverse_cholesky(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """:func:`_inverse_cholesky` in 2m³/3 flops instead of ~5m³ (it runs once per neuron on per-neuron ``H_i``).

    With ``J`` the order reversal and ``J H J = L Lᵀ``, ``H = R Rᵀ`` with ``R = J L J`` upper, so
    ``H⁻¹ = R⁻ᵀ R⁻¹`` and the upper Cholesky factor of ``H⁻¹`` is ``R⁻¹ = J L⁻¹ J``: one Cholesky, one
    triangular inverse, over the live coordinates only (a dead one is decoupled: its factor is diagonal).
    """
    damp = percdamp * float(np.mean(np.where(dead, 1.0, np.diag(hessian))))
    live = np.flatnonzero(~dead)[::-1]
    h = hessian[np.ix_(live, live)] + damp * np.eye(live.size)
    lower = torch.linalg.cholesky(torch.from_numpy(h))
    inverse = torch.linalg.solve_triangular(lower, torch.eye(live.size, dtype=lower.dtype), upper=False).numpy()
    u = np.diag(np.full(hessian.shape[0], 1.0 / np.sqrt(1.0 + damp)))
    u[np.ix_(live, live)] = inverse
    return u


def _neuron_factor(problem: LayerProblem, i: int, percdamp: float) -> np.ndarray:
    """Neuron ``i``'s factor of its own ``H_i``, kept beside the ``H_i`` when memory allows (the same for every
    bit width: it depends on ``H_i`` and ``percdamp`` only)."""
    return problem.stats.kept(("gptq", percdamp), i, lambda: _reversed_inverse_cholesky(
        problem.neuron_hessian(i), problem.dead[i], percdamp))


def _gptq_rows(problem: LayerProblem, rows: slice, u: np.ndarray, dead: np.ndarray, restricted: bool,
               block_size: int) -> np.ndarray:
    """GPTQ of the neurons ``rows``: on the inverse Cholesky factor ``u`` ``(m, m)`` and ``dead`` inputs
    ``(m,)`` they share, or on one factor and mask per row (``u`` ``(r, m, m)``, ``dead`` ``(r, m)``), all rows
    advancing column by column together."""
    grid, steps = problem.grid, problem.steps[rows]
    own = u.ndim == 3
    w = np.where(dead, 0.0, problem.weights[rows])
    lo, hi = problem.base[rows], problem.base[rows] + problem.free[rows]
    ints = np.empty_like(lo)
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
            if own:
                err = (col - grid.dequantize(z, steps[:, j])) / u[:, j, j]
                w[:, j + 1:stop] -= err[:, None] * u[:, j, j + 1:stop]
            else:
                err = (col - grid.dequantize(z, steps[:, j])) / u[j, j]
                w[:, j + 1:stop] -= np.outer(err, u[j, j + 1:stop])
            errs[:, j - start] = err
        if own:
            w[:, stop:] -= (errs[:, None, :] @ u[:, start:stop, stop:])[:, 0]
        else:
            w[:, stop:] -= errs @ u[start:stop, stop:]
    return np.where(dead, lo, ints)


def gptq(problem: LayerProblem, percdamp: float = 0.01, block_size: int = 128, act_order: bool = False) -> np.ndarray:
    """GPTQ grid integers ``(n, m)`` (nearest level of the error-corrected weight); ``act_order``: inputs in
    order of decreasing ``H_jj`` (see the module docstring)."""
    return _gptq(problem, False, percdamp, block_size, act_order)


def gptq_restricted(problem: LayerProblem, percdamp: float = 0.01, block_size: int = 128,
                    act_order: bool = False) -> np.ndarray:
    """GPTQ restricted to each coordinate's floor/ceil: a valid QUBO assignment, as integers ``(n, m)``."""
    return _gptq(problem, True, percdamp, block_size, act_order)


def gptq_act(problem: LayerProblem) -> np.ndarray:
    """``gptq-act``: :func:`gptq` with ``act_order=True``."""
    return gptq(problem, act_order=True)


def gptq_restricted_act(problem: LayerProblem) -> np.ndarray:
    """``gptq-restricted-act``: :func:`gptq_restricted` with ``act_order=True`` (a method and a warm start)."""
    return gptq_restricted(problem, act_order=True)


BASELINES = {"rtn": rtn, "gptq": gptq, "gptq-restricted": gptq_restricted, "gptq-act": gptq_act,
             "gptq-restricted-act": gptq_restricted_act}

#: The act-order baselines (they need the layer's one shared ``H``); each name is its index-order one + ``-act``.
ACT_ORDER = ("gptq-act", "gptq-restricted-act")
